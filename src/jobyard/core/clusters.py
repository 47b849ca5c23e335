"""Clusters: reservations of this machine's inventory, made of instances of a catalog type.

The catalog (``Config.instance_types``) names instance types by their GPUs, CPUs and memory;
the local provider carves instances out of the inventory. A cluster moves
``pending`` → ``ready`` (its CLUSTER_CLAIM completed: its instances are reserved) →
``releasing`` → ``released``; a claim that cannot be served ends it ``failed``. Only
``pending``, ``ready`` and ``releasing`` clusters hold (or will hold) resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobyard.core.models import Resources
from jobyard.errors import ValidationFailed


class ClusterState(StrEnum):
    PENDING = "pending"  # its CLUSTER_CLAIM has not completed yet
    READY = "ready"
    RELEASING = "releasing"  # a CLUSTER_RELEASE is under way
    RELEASED = "released"
    FAILED = "failed"  # the claim could not be served


HOLDING = frozenset({ClusterState.PENDING, ClusterState.READY, ClusterState.RELEASING})
MAX_INSTANCES = 64


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str
    gpus: int
    cpus: float
    memory_mb: int
    price_hour: float = 0.0

    @property
    def resources(self) -> Resources:
        return Resources(gpus=self.gpus, cpus=self.cpus, memory_mb=self.memory_mb)


def default_catalog(capacity: Resources) -> dict[str, dict[str, float]]:
    """cpu-1 and cpu-2 (1 GiB of memory per CPU), and 1xGPU (a GPU, a share of the rest)
    when the machine has GPUs; only the types that fit the machine."""
    out: dict[str, dict[str, float]] = {}
    for n in (1, 2):
        out[f"cpu-{n}"] = {"gpus": 0, "cpus": n, "memory_mb": 1024 * n}
    if capacity.gpus:
        out["1xGPU"] = {"gpus": 1, "cpus": max(1, int(capacity.cpus // capacity.gpus)),
                        "memory_mb": capacity.memory_mb // capacity.gpus}
    return {k: v for k, v in out.items()
            if Resources(int(v["gpus"]), v["cpus"], int(v["memory_mb"])).fits_in(capacity)}


def build_catalog(spec: dict[str, dict[str, float]], capacity: Resources
                  ) -> dict[str, InstanceType]:
    """The configured catalog (or the default one), checked against the inventory."""
    catalog: dict[str, InstanceType] = {}
    for name, v in (spec or default_catalog(capacity)).items():
        unknown = set(v) - {"gpus", "cpus", "memory_mb", "price_hour"}
        if unknown:
            raise ValueError(f"instance type {name}: unknown fields {sorted(unknown)}")
        it = InstanceType(name, int(v.get("gpus", 0)), float(v.get("cpus", 1)),
                          int(v.get("memory_mb", 0)), float(v.get("price_hour", 0)))
        if it.gpus < 0 or it.cpus <= 0 or it.memory_mb < 0:
            raise ValueError(f"instance type {name}: gpus/memory_mb >= 0, cpus > 0")
        if not it.resources.fits_in(capacity):
            raise ValueError(f"instance type {name} ({it.resources}) does not fit this "
                             f"machine ({capacity})")
        catalog[name] = it
    return catalog


@dataclass(slots=True)
class Cluster:
    id: int
    uid: str
    org_id: int
    user_id: int
    name: str
    instance_type: str
    count: int
    gpus_per_instance: int
    state: ClusterState
    created_at: float
    updated_at: float
    # One entry per reserved instance: {"gpus": [indices], "cpus", "memory_mb"}.
    instances: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    attachments: tuple[str, ...] = ()  # volume ids
    deletion_protection: bool = False  # while on, the cluster cannot be released

    @property
    def gpus(self) -> int:
        """GPUs the cluster holds or will hold (what the org quota counts)."""
        return self.count * self.gpus_per_instance if self.state in HOLDING else 0


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_INSTANCES:
        raise ValidationFailed(f"instance_count must be between 1 and {MAX_INSTANCES}",
                               {"loc": ["body", "instance_count"], "type": "value_error"})
    return count


def numbered(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instances with their stable number ``n`` (records from before numbers: their index)."""
    return [{**inst, "n": inst.get("n", i)} for i, inst in enumerate(instances)]
