"""Clusters as the API sees them: visibility, and the rules checked when a request is made
(catalog, quota, state). The work is done later by ``requests/clusters.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobyard.core.clusters import HOLDING, Cluster, ClusterState, InstanceType, check_count
from jobyard.core.models import Principal, Resources
from jobyard.core.requests import Request, RequestType
from jobyard.core.storage import (
    StorageService,
    check_name,
    refuse_if_protected,
    set_protection,
)
from jobyard.core.volumes import Volume, VolumeState
from jobyard.errors import Conflict, NotFound, Unschedulable, ValidationFailed

# Clusters whose deletion protection may change: those that hold (or will hold) resources.
PROTECTABLE = tuple(sorted(str(s) for s in HOLDING))


class ClusterService:
    def __init__(self, store: Any, catalog: dict[str, InstanceType], storage: StorageService,
                 default_quota: int | None = None,
                 on_intent: Callable[[], None] = lambda: None):
        self.store = store
        self.catalog = catalog
        self.storage = storage
        self.default_quota = default_quota
        self.on_intent = on_intent

    def instance_type(self, name: str) -> InstanceType:
        if name not in self.catalog:
            raise ValidationFailed(
                f"unknown instance_type '{name}'; known: {', '.join(sorted(self.catalog))}",
                {"loc": ["body", "instance_type"], "type": "value_error"})
        return self.catalog[name]

    def get(self, who: Principal, uid: str) -> Cluster:
        cluster = self.store.get_cluster(uid)
        if cluster is None or not StorageService.can_see(who, cluster.org_id):
            raise NotFound(f"cluster {uid} not found")
        return cluster

    def check_job(self, who: Principal, uid: str, want: Resources) -> dict[str, Any]:
        """A job for cluster ``uid``: the cluster is the caller's (404), ``ready`` (409), and the
        job fits one instance of it (422). Returns what the job records: the cluster's name."""
        cluster = self.store.get_cluster(uid)
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
        return {"name": cluster.name}

    def list(self, who: Principal, mine: bool = False) -> list[Cluster]:
        """The org's clusters; with ``mine``, only those the caller claimed."""
        clusters = self.store.list_clusters(who.org_id)
        return [c for c in clusters if c.user_id == who.user_id] if mine else clusters

    def claim(self, who: Principal, instance_type: str, count: int, name: str | None,
              deletion_protection: bool = False) -> tuple[Request, Cluster]:
        """Refused at once (409 QUOTA_EXCEEDED) beyond the org's GPU quota."""
        it = self.instance_type(instance_type)
        req, cluster = self.store.create_cluster(
            who, check_name(name or f"{it.name}-cluster"), it.name, check_count(count), it.gpus,
            self.default_quota)
        if deletion_protection:  # before anyone was told its id
            self.store.set_protection("clusters", cluster.uid, True, PROTECTABLE)
            cluster.deletion_protection = True
        self.on_intent()
        return req, cluster

    def protect(self, who: Principal, uid: str, on: bool) -> Cluster:
        """Turn deletion protection on or off, at once (no request)."""
        cluster = self.get(who, uid)
        set_protection(self.store, "clusters", cluster.uid, on, "cluster", PROTECTABLE)
        return self.get(who, uid)

    def edit(self, who: Principal, uid: str, name: str | None, count: int | None,
             deletion_protection: bool | None = None) -> tuple[Request | None, Cluster]:
        """Rename and/or resize (a request: a grow is checked against the quota now, against
        free resources when it is processed), and/or set deletion protection (at once, with
        the request if there is one; no request when it is the only change)."""
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

        req = self.store.request_on_cluster(
            who, cluster, RequestType.CLUSTER_EDIT, params, check,
            "Cluster edit queued", gpus_after, self.default_quota)
        self.on_intent()
        if deletion_protection is not None:
            cluster.deletion_protection = deletion_protection
        return req, cluster

    def release(self, who: Principal, uid: str) -> tuple[Request, Cluster]:
        """Refused (409 DELETION_PROTECTED) while deletion protection is on."""
        cluster = self.get(who, uid)

        def check(fresh: Cluster) -> dict[str, Any]:
            if fresh.state is not ClusterState.READY:
                raise Conflict(f"cluster {uid} is {fresh.state}; it cannot be released now")
            refuse_if_protected("cluster", uid, fresh.deletion_protection)
            return {"state": str(ClusterState.RELEASING)}

        req = self.store.request_on_cluster(who, cluster, RequestType.CLUSTER_RELEASE, {},
                                            check, "Cluster release queued")
        self.on_intent()
        return req, cluster

    def attach(self, who: Principal, volume_uid: str, cluster_uid: str,
               detach: bool = False) -> tuple[Request, Volume]:
        """STORAGE_ATTACH (or _DETACH) of a ready volume and a ready cluster of one org."""
        vol = self.storage.get_volume(who, volume_uid)
        cluster = self.get(who, cluster_uid)
        if cluster.org_id != vol.org_id:
            raise NotFound(f"cluster {cluster_uid} not found")
        kind = RequestType.STORAGE_DETACH if detach else RequestType.STORAGE_ATTACH

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
        req = self.store.request_on_volume(who, vol, kind, {"cluster_id": cluster_uid}, check,
                                           f"Storage volume {word} queued")
        self.on_intent()
        return req, vol


def _ready(what: str) -> Callable[[Cluster], None]:
    def check(cluster: Cluster) -> None:
        if cluster.state is not ClusterState.READY:
            raise Conflict(f"cluster {cluster.uid} is {cluster.state}; it cannot be {what} now")
    return check
