"""Handlers of the cluster operations (claim, edit, release) and of volume attach/detach.

They run in the leading daemon's process and reserve through its Allocator. The rule that
keeps the inventory consistent across crashes: **the allocator never holds less than the
store records** — a reservation grows in memory before it is written (undone if the write
fails) and shrinks only after. At start, reconcile rebuilds the allocator from the store, so a
claim cut short by a crash simply reserves again when it is resumed. Each step is idempotent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobyard.core.clusters import Cluster, ClusterState, InstanceType, numbered
from jobyard.core.jobs import cancel_transition
from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import Store
from jobyard.core.states import ACTIVE, JobState
from jobyard.daemon.inventory import Allocator
from jobyard.errors import Conflict, NotFound
from jobyard.events.notify import Notifier
from jobyard.operations.processor import Handler, OperationProcessor

STOP_POLL_S = 0.05  # how often a release looks whether its jobs are gone


class ClusterHandlers:
    def __init__(self, store: Store, allocator: Allocator, notifier: Notifier,
                 catalog: dict[str, InstanceType]):
        self.store = store
        self.allocator = allocator
        self.notifier = notifier
        self.catalog = catalog

    def register(self, processor: OperationProcessor) -> None:
        processor.handle(OperationType.CLUSTER_CLAIM, Handler(self.claim, self.claim_failed))
        processor.handle(OperationType.CLUSTER_EDIT, Handler(self.edit))
        processor.handle(OperationType.CLUSTER_RELEASE, Handler(self.release))
        processor.handle(OperationType.STORAGE_ATTACH, Handler(self.attach))
        processor.handle(OperationType.STORAGE_DETACH, Handler(self.detach))

    async def _get(self, uid: str) -> Cluster:
        cluster: Cluster | None = await asyncio.to_thread(self.store.clusters.get_cluster, uid)
        if cluster is None:
            raise NotFound(f"cluster {uid} no longer exists")
        return cluster

    async def _grow(self, cluster: Cluster, count: int, **changes: Any) -> None:
        """Reserve up to ``count`` instances, then record them (undone if that fails)."""
        alloc = self.allocator
        before = alloc.reservation(cluster.uid)
        each = self.catalog[cluster.instance_type].resources
        instances = alloc.reserve(cluster.uid, each, count)
        if instances is None:
            free = alloc.free()
            raise Conflict(f"not enough free resources for {count} x {cluster.instance_type} "
                           f"(free now: {free.gpus} GPUs, {free.cpus:g} CPUs, "
                           f"{free.memory_mb} MB)")
        try:
            await asyncio.to_thread(self.store.clusters.update_cluster, cluster.uid,
                                    instances=instances, count=count, **changes)
        except BaseException:
            alloc.set_reservation(cluster.uid, before)
            raise
        self.notifier.wake_daemon()

    async def _shrink(self, cluster: Cluster, instances: list[dict[str, Any]],
                      **changes: Any) -> None:
        """Record the smaller reservation, then free the rest."""
        await asyncio.to_thread(self.store.clusters.update_cluster, cluster.uid,
                                instances=instances,
                                **changes)
        self.allocator.set_reservation(cluster.uid, instances)
        self.notifier.wake_daemon()

    def _keep(self, cluster: Cluster, count: int) -> list[dict[str, Any]]:
        """The instances left after shrinking to ``count``: only idle ones go (the highest
        numbers first); refused, nothing changed, when too few are idle."""
        instances = numbered(cluster.instances)
        busy = self.allocator.busy_instances(cluster.uid)
        idle = [i["n"] for i in instances if i["n"] not in busy]
        drop = len(instances) - count
        if drop > len(idle):
            raise Conflict(f"cannot shrink {cluster.uid} to {count} instances: "
                           f"{len(busy)} of {len(instances)} run jobs and only idle instances "
                           "are removed; wait for jobs to end, or cancel some")
        gone = set(idle[len(idle) - drop:]) if drop else set()
        return [i for i in instances if i["n"] not in gone]

    async def claim(self, req: Operation) -> str:
        cluster = await self._get(str(req.object_id))
        if cluster.state is ClusterState.PENDING:
            await self._grow(cluster, cluster.count, state=str(ClusterState.READY),
                             message=None)
        elif cluster.state is not ClusterState.READY:
            raise Conflict(f"cluster {cluster.uid} is {cluster.state}")
        return f"Cluster {cluster.uid} is ready ({cluster.count} x {cluster.instance_type})"

    async def claim_failed(self, req: Operation) -> None:
        uid = str(req.object_id)
        cluster = await asyncio.to_thread(self.store.clusters.get_cluster, uid)
        if cluster is not None and cluster.state is ClusterState.PENDING:
            await asyncio.to_thread(self.store.clusters.end_cluster, uid, ClusterState.FAILED,
                                    "the claim failed")
        self.allocator.set_reservation(uid, [])

    async def edit(self, req: Operation) -> str:
        cluster = await self._get(str(req.object_id))
        name = req.params.get("name", cluster.name)
        count = req.params.get("count", cluster.count)
        if count > len(cluster.instances):
            await self._grow(cluster, count, name=name)
        else:
            await self._shrink(cluster, self._keep(cluster, count), name=name, count=count)
        return f"Cluster {cluster.uid} edited ({count} x {cluster.instance_type})"

    async def release(self, req: Operation) -> str:
        uid = str(req.object_id)
        cluster = await self._get(uid)
        if cluster.state is not ClusterState.RELEASED:
            await self.stop_jobs_on_cluster(cluster)
            await asyncio.to_thread(self.store.clusters.end_cluster, uid, ClusterState.RELEASED,
                                    "released")
        self.allocator.set_reservation(uid, [])  # after the record, never before
        self.notifier.wake_daemon()
        return f"Cluster {uid} released"

    async def stop_jobs_on_cluster(self, cluster: Cluster) -> None:
        """Cancel the cluster's queued and active jobs as a cancel does (the daemon stops
        them), and return once none is left: no process of theirs, their instances idle."""
        live = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]
        while jobs := await asyncio.to_thread(self.store.jobs.jobs_on_cluster, cluster.uid, live):
            now = self.store.clock()
            moves = [cancel_transition(j, now, f"release of {cluster.uid}") for j in jobs
                     if j.state is not JobState.CANCELING]
            if moves:
                await asyncio.to_thread(self.store.jobs.apply, moves)  # a lost race: next round
                self.notifier.wake_daemon("cancel")
            await asyncio.sleep(STOP_POLL_S)

    async def attach(self, req: Operation) -> str:
        vol, cluster_uid = await self._volume(req)
        await asyncio.to_thread(self.store.clusters.attach_volume, vol.id, cluster_uid)
        return f"Storage volume {vol.uid} attached to {cluster_uid}"

    async def detach(self, req: Operation) -> str:
        vol, cluster_uid = await self._volume(req)
        await asyncio.to_thread(self.store.clusters.detach_volume, vol.id, cluster_uid)
        return f"Storage volume {vol.uid} detached from {cluster_uid}"

    async def _volume(self, req: Operation) -> tuple[Any, str]:
        vol = await asyncio.to_thread(self.store.volumes.get_volume, str(req.object_id))
        if vol is None:
            raise NotFound(f"storage volume {req.object_id} no longer exists")
        return vol, str(req.params["cluster_id"])
