"""What this machine can run: GPUs (NVML or virtual), CPUs and memory, and who holds what."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from jobyard.config import Config
from jobyard.core.clusters import numbered
from jobyard.core.models import Resources

log = logging.getLogger(__name__)


@dataclass
class Inventory:
    gpus: list[int]
    cpus: float
    memory_mb: int
    gpu_source: str  # "nvml", "virtual" or "none"

    @property
    def capacity(self) -> Resources:
        return Resources(gpus=len(self.gpus), cpus=self.cpus, memory_mb=self.memory_mb)


def nvml_gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees; 0 without a driver or the library."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no GPU, no library: all mean "none here"
        return 0


def detect_inventory(config: Config) -> Inventory:
    if config.virtual_gpus is not None:
        gpus, source = config.virtual_gpus, "virtual"
    else:
        gpus = nvml_gpu_count()
        source = "nvml" if gpus else "none"
    cpus = config.cpus if config.cpus is not None else float(os.cpu_count() or 1)
    memory = config.memory_mb
    if memory is None:
        memory = psutil.virtual_memory().total // (1024 * 1024)
    return Inventory(gpus=list(range(gpus)), cpus=cpus, memory_mb=memory, gpu_source=source)


@dataclass
class Allocator:
    """Hands out the inventory to jobs and to clusters. Lives in the daemon; rebuilt from the
    store on start (``daemon/reconcile.py``): jobs' ``assigned``, clusters' ``instances``.

    ``held`` maps a job id to what it runs on; ``reserved`` maps a cluster id to its instances
    (``{"n", "gpus", "cpus", "memory_mb"}`` each, ``n`` a stable instance number). Ordinary jobs
    only get what neither holds. A job on a cluster holds one instance of it (its ``assigned``
    has ``"cluster": {"id", "instance": n}``): inside the reservation, never counted again.
    """

    inventory: Inventory
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _parts(self) -> list[dict[str, Any]]:
        own = (a for a in self.held.values() if "cluster" not in a)
        return [*own, *(i for insts in self.reserved.values() for i in insts)]

    def free(self) -> Resources:
        parts = self._parts()
        inv = self.inventory
        return Resources(
            gpus=len(inv.gpus) - sum(len(a["gpus"]) for a in parts),
            cpus=round(inv.cpus - sum(a["cpus"] for a in parts), 6),
            memory_mb=inv.memory_mb - sum(a["memory_mb"] for a in parts),
        )

    def _pick_gpus(self, n: int) -> list[int]:
        taken = {g for a in self._parts() for g in a["gpus"]}
        return [g for g in self.inventory.gpus if g not in taken][:n]

    def try_allocate(self, job_id: int, want: Resources, free: Resources) -> dict[str, Any] | None:
        if not want.fits_in(free):
            return None
        assigned = {"gpus": self._pick_gpus(want.gpus), "cpus": want.cpus,
                    "memory_mb": want.memory_mb}
        self.held[job_id] = assigned
        return assigned

    def busy_instances(self, cluster: str) -> set[int]:
        """Instance numbers of ``cluster`` that a job holds."""
        return {a["cluster"]["instance"] for a in self.held.values()
                if a.get("cluster", {}).get("id") == cluster}

    def try_allocate_on(self, job_id: int, cluster: str) -> dict[str, Any] | None:
        """One idle instance of ``cluster`` for the job (all of it); None when none is idle."""
        busy = self.busy_instances(cluster)
        for inst in self.reserved.get(cluster, []):
            if inst["n"] not in busy:
                assigned = {"gpus": list(inst["gpus"]), "cpus": inst["cpus"],
                            "memory_mb": inst["memory_mb"],
                            "cluster": {"id": cluster, "instance": inst["n"]}}
                self.held[job_id] = assigned
                return assigned
        return None

    def restore(self, job_id: int, assigned: dict[str, Any] | None) -> None:
        if assigned is not None:
            self.held[job_id] = assigned

    def release(self, job_id: int) -> None:
        self.held.pop(job_id, None)

    # clusters --------------------------------------------------------------------------------
    def reservation(self, cluster: str) -> list[dict[str, Any]]:
        return numbered(self.reserved.get(cluster, []))

    def reserve(self, cluster: str, each: Resources, count: int) -> list[dict[str, Any]] | None:
        """Grow ``cluster`` to ``count`` instances of ``each`` out of what is free; None (and
        nothing changed) when that does not fit. Returns all its instances."""
        have = self.reservation(cluster)
        extra = max(0, count - len(have))
        need = Resources(gpus=each.gpus * extra, cpus=each.cpus * extra,
                         memory_mb=each.memory_mb * extra)
        if not need.fits_in(self.free()):
            return None
        gpus = self._pick_gpus(need.gpus)
        first = max((inst["n"] for inst in have), default=-1) + 1
        for i in range(extra):
            have.append({"n": first + i, "gpus": gpus[i * each.gpus:(i + 1) * each.gpus],
                         "cpus": each.cpus, "memory_mb": each.memory_mb})
        self.reserved[cluster] = have
        return have

    def set_reservation(self, cluster: str, instances: list[dict[str, Any]]) -> None:
        """What the store records for ``cluster`` (restore at start, shrink, release)."""
        if instances:
            self.reserved[cluster] = numbered(instances)
        else:
            self.reserved.pop(cluster, None)
