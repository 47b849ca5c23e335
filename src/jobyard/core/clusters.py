"""Clusters: reservations of this machine's inventory, made of instances of a catalog type.

The catalog (``Config.instance_types``) names instance types by their GPUs, CPUs and memory;
the local provider carves instances out of the inventory. A cluster moves
``pending`` → ``ready`` (its CLUSTER_CLAIM completed: its instances are reserved) →
``releasing`` → ``released``; a claim that cannot be served ends it ``failed``. Only
``pending``, ``ready`` and ``releasing`` clusters hold (or will hold) resources.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobyard.core.inputs import AttachVolume, ClaimCluster, EditCluster
from jobyard.core.models import Job, Principal, Resources
from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import ClusterStore, KvStore, VolumeStore
from jobyard.core.rules import check_name, refuse_if_protected, set_protection
from jobyard.core.volumes import Volume, VolumeService, VolumeState
from jobyard.errors import Conflict, NotFound, Unschedulable, ValidationFailed


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


# Clusters whose deletion protection may change: those that hold (or will hold) resources.
PROTECTABLE = tuple(sorted(str(s) for s in HOLDING))


class ClusterService:
    """Clusters as the API sees them: visibility, and the rules checked when an operation is
    made (catalog, quota, state); the operation processor does the work
    (``operations/clusters.py``)."""

    def __init__(self, clusters: ClusterStore, volume_store: VolumeStore, kv: KvStore,
                 catalog: dict[str, InstanceType], volumes: VolumeService,
                 default_quota: int | None = None,
                 on_intent: Callable[[], None] = lambda: None):
        self._clusters = clusters
        self._volume_store = volume_store
        self._kv = kv
        self.catalog = catalog
        self.volumes = volumes
        self.default_quota = default_quota
        self.on_intent = on_intent

    def instance_type(self, name: str) -> InstanceType:
        if name not in self.catalog:
            raise ValidationFailed(
                f"unknown instance_type '{name}'; known: {', '.join(sorted(self.catalog))}",
                {"loc": ["body", "instance_type"], "type": "value_error"})
        return self.catalog[name]

    def get(self, who: Principal, uid: str) -> Cluster:
        cluster = self._clusters.get_cluster(uid)
        if cluster is None or not who.sees(cluster.org_id):
            raise NotFound(f"cluster {uid} not found")
        return cluster

    def of_job(self, job: Job) -> Cluster | None:
        """The cluster a job runs on (None for its own, ephemeral one)."""
        return self._clusters.get_cluster(job.cluster_id) if job.cluster_id else None

    def by_number(self, who: Principal, number: int) -> Cluster:
        """A cluster of the caller's org by its integer id (what Integrate.io clients use)."""
        cluster = self._clusters.cluster_by_number(number)
        if cluster is None or cluster.org_id != who.org_id:
            raise NotFound(f"cluster {number} not found")
        return cluster

    def page(self, who: Principal, offset: int, limit: int,
             states: Collection[str] | None = None) -> tuple[list[Cluster], int]:
        """A page of the org's clusters (in ``states``), newest first, and how many match."""
        return self._clusters.cluster_page(who.org_id, offset, limit, states)

    def facts(self, clusters: Collection[Cluster]) -> dict[str, dict[str, Any]]:
        """Per cluster uid: its open operation's status, when its claim and release completed,
        its live jobs and when its last job ended (``ClusterStore.cluster_facts``)."""
        return self._clusters.cluster_facts([c.uid for c in clusters])

    def notes(self, clusters: Collection[Cluster], prefix: str) -> dict[int, Any]:
        """What a dialect noted about these clusters under ``prefix`` (by cluster id)."""
        found = self._kv.kv_many([f"{prefix}{c.id}" for c in clusters])
        return {c.id: found[f"{prefix}{c.id}"] for c in clusters if f"{prefix}{c.id}" in found}

    def note(self, cluster: Cluster, prefix: str, value: Any) -> None:
        """Keep a dialect's own facts about a cluster (e.g. Integrate.io's idle settings)."""
        self._kv.put_kv(f"{prefix}{cluster.id}", value)

    def check_job(self, who: Principal, uid: str, want: Resources) -> str:
        """A job for cluster ``uid``: the cluster is the caller's (404), ``ready`` (409), and the
        job fits one instance of it (422). Returns what the job records: the cluster's name."""
        cluster = self._clusters.get_cluster(uid)
        if cluster is None or cluster.org_id != who.org_id:
            raise NotFound(f"cluster {uid} not found")
        if cluster.state is not ClusterState.READY:
            raise Conflict(f"cluster {uid} is {cluster.state}; jobs need a ready cluster",
                           {"state": str(cluster.state)})
        each = self.catalog[cluster.instance_type].resources
        if not want.fits_in(each):
            raise Unschedulable(
                f"the job does not fit one instance of {uid} ({cluster.instance_type}: "
                f"{each.gpus} GPUs, {each.cpus:g} CPUs, {each.memory_mb} MB)",
                {"instance_type": cluster.instance_type})
        return cluster.name

    def list(self, who: Principal, mine: bool = False) -> list[Cluster]:
        """The org's clusters; with ``mine``, only those the caller claimed."""
        clusters = self._clusters.list_clusters(who.org_id)
        return [c for c in clusters if c.user_id == who.user_id] if mine else clusters

    def claim(self, who: Principal, new: ClaimCluster) -> tuple[Operation, Cluster]:
        """Refused at once (409 QUOTA_EXCEEDED) beyond the org's GPU quota."""
        it = self.instance_type(new.instance_type)
        req, cluster = self._clusters.create_cluster(
            who, check_name(new.name or f"{it.name}-cluster"), it.name, check_count(new.count),
            it.gpus, self.default_quota)
        if new.deletion_protection:  # before anyone was told its id
            self._clusters.set_protection(cluster.uid, True, PROTECTABLE)
            cluster.deletion_protection = True
        self.on_intent()
        return req, cluster

    def protect(self, who: Principal, uid: str, on: bool) -> Cluster:
        """Turn deletion protection on or off, at once (no operation)."""
        cluster = self.get(who, uid)
        set_protection(self._clusters, cluster.uid, on, "cluster", PROTECTABLE)
        return self.get(who, uid)

    def edit(self, who: Principal, uid: str, change: EditCluster
             ) -> tuple[Operation | None, Cluster]:
        """Rename and/or resize (an operation: a grow is checked against the quota now, against
        free resources when it is processed), and/or set deletion protection (at once, with
        the operation if there is one; no operation when it is the only change)."""
        name, count, deletion_protection = change.name, change.count, change.deletion_protection
        cluster = self.get(who, uid)
        if name is None and count is None:
            if deletion_protection is None:
                raise ValidationFailed(
                    "nothing to change: give name, instance_count and/or deletion_protection",
                    {"loc": ["body"], "type": "value_error"})
            return None, self.protect(who, uid, deletion_protection)
        params: dict[str, Any] = {"name": check_name(name) if name else cluster.name}
        if count is not None:
            params["count"] = check_count(count)
        gpus_after = count * cluster.gpus_per_instance if count is not None else None

        def check(fresh: Cluster) -> dict[str, Any] | None:
            _ready("edited")(fresh)
            if deletion_protection is None:
                return None
            return {"deletion_protection": deletion_protection}

        req = self._clusters.cluster_operation(
            who, cluster, OperationType.CLUSTER_EDIT, params, check,
            "Cluster edit queued", gpus_after, self.default_quota)
        self.on_intent()
        if deletion_protection is not None:
            cluster.deletion_protection = deletion_protection
        return req, cluster

    def release(self, who: Principal, uid: str) -> tuple[Operation, Cluster]:
        """Refused (409 DELETION_PROTECTED) while deletion protection is on."""
        cluster = self.get(who, uid)

        def check(fresh: Cluster) -> dict[str, Any]:
            if fresh.state is not ClusterState.READY:
                raise Conflict(f"cluster {uid} is {fresh.state}; it cannot be released now")
            refuse_if_protected("cluster", uid, fresh.deletion_protection)
            return {"state": str(ClusterState.RELEASING)}

        req = self._clusters.cluster_operation(who, cluster, OperationType.CLUSTER_RELEASE, {},
                                               check, "Cluster release queued")
        self.on_intent()
        return req, cluster

    def attach(self, who: Principal, change: AttachVolume) -> tuple[Operation, Volume]:
        """STORAGE_ATTACH (or _DETACH) of a ready volume and a ready cluster of one org."""
        cluster_uid, detach = change.cluster_id, change.detach
        vol = self.volumes.get_volume(who, change.volume_id)
        cluster = self.get(who, cluster_uid)
        if cluster.org_id != vol.org_id:
            raise NotFound(f"cluster {cluster_uid} not found")
        kind = OperationType.STORAGE_DETACH if detach else OperationType.STORAGE_ATTACH

        def check(fresh: Volume) -> None:
            if fresh.state is not VolumeState.READY:
                raise Conflict(f"storage volume {vol.uid} is {fresh.state}")
            attached = cluster_uid in fresh.attachments
            if detach and not attached:
                raise Conflict(f"storage volume {vol.uid} is not attached to {cluster_uid}")
            if not detach:
                if attached:
                    raise Conflict(f"storage volume {vol.uid} is already attached to "
                                   f"{cluster_uid}")
                _ready("attached to")(cluster)

        word = "detach" if detach else "attach"
        req = self._volume_store.volume_operation(who, vol, kind, {"cluster_id": cluster_uid},
                                                  check, f"Storage volume {word} queued")
        self.on_intent()
        return req, vol


def _ready(what: str) -> Callable[[Cluster], None]:
    def check(cluster: Cluster) -> None:
        if cluster.state is not ClusterState.READY:
            raise Conflict(f"cluster {cluster.uid} is {cluster.state}; it cannot be {what} now")
    return check
