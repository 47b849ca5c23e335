"""The SQL store's clusters, volume attachments and org GPU quotas. Mixed into SqlStore.

A cluster's ``instances`` column is the one record of what it reserves: the daemon's
Allocator is rebuilt from it at start (``daemon/reconcile.py``). Every change is recorded with
its operation in one transaction, like volumes (``store/operations.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.clusters import HOLDING, Cluster, ClusterState
from jobyard.core.models import Job, Principal
from jobyard.core.operations import Operation, OperationType
from jobyard.errors import Conflict, NotFound, QuotaExceeded
from jobyard.store import tables as t
from jobyard.store.operations import _OPEN, _R
from jobyard.store.rows import job_from_row

_C = t.clusters
_A = t.volume_attachments
_HOLDING = [str(s) for s in HOLDING]
ClusterCheck = Callable[[Cluster], dict[str, Any] | None]  # raises to refuse; returns changes


def _cluster(row: Any, attachments: tuple[str, ...] = ()) -> Cluster:
    m = dict(row._mapping)
    m["state"] = ClusterState(m["state"])
    return Cluster(**m, attachments=attachments)


class ClusterStore:
    engines: Any
    clock: Callable[[], float]
    _insert_operation: Callable[..., Operation]

    def create_cluster(
        self, who: Principal, name: str, instance_type: str, count: int, gpus_each: int,
        default_quota: int | None,
    ) -> tuple[Operation, Cluster]:
        """A new ``pending`` cluster and its CLUSTER_CLAIM operation, within the org's quota."""
        def insert(conn: sa.Connection) -> tuple[Operation, Cluster]:
            self._check_quota(conn, who.org_id, count * gpus_each, None, default_quota)
            now = self.clock()
            row = {"uid": ids.cluster_uid(), "org_id": who.org_id, "user_id": who.user_id,
                   "name": name, "instance_type": instance_type, "count": count,
                   "gpus_per_instance": gpus_each, "state": str(ClusterState.PENDING),
                   "instances": [], "message": None, "created_at": now, "updated_at": now}
            row["id"] = conn.execute(sa.insert(_C), row).inserted_primary_key[0]
            req = self._insert_operation(conn, OperationType.CLUSTER_CLAIM, who, row["uid"],
                                       {"instance_type": instance_type, "count": count},
                                       "Cluster claim queued")
            return req, _cluster(_Row(row))

        return self.engines.write_tx(insert)

    def cluster_operation(
        self, who: Principal, cluster: Cluster, kind: OperationType, params: dict[str, Any],
        check: ClusterCheck, message: str, gpus_after: int | None = None,
        default_quota: int | None = None,
    ) -> Operation:
        """Record ``kind`` on ``cluster`` once ``check`` passed on its locked row (one open
        operation per cluster: 409 otherwise); with ``gpus_after``, within the org's quota."""
        def insert(conn: sa.Connection) -> Operation:
            row = conn.execute(sa.select(_C).where(_C.c.id == cluster.id)
                               .with_for_update()).first()
            if row is None:
                raise NotFound(f"cluster {cluster.uid} not found")
            busy = conn.execute(sa.select(_R.c.uid).where(
                _R.c.object_id == cluster.uid, _R.c.status.in_(_OPEN)).limit(1)).scalar()
            if busy:
                raise Conflict(f"cluster {cluster.uid} has a request in progress ({busy})",
                               {"request_id": busy})
            changes = check(_cluster(row, self._volumes_of(conn, cluster.uid)))
            if gpus_after is not None:
                self._check_quota(conn, row.org_id, gpus_after, cluster.uid, default_quota)
            if changes:
                conn.execute(sa.update(_C).where(_C.c.id == cluster.id)
                             .values(**changes, updated_at=self.clock()))
            return self._insert_operation(conn, kind, who, cluster.uid, params, message)

        return self.engines.write_tx(insert)

    def get_cluster(self, uid: str) -> Cluster | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_C).where(_C.c.uid == uid)).first()
            return _cluster(row, self._volumes_of(conn, uid)) if row else None

    def list_clusters(self, org_id: int | None, holding_only: bool = False) -> list[Cluster]:
        stmt = sa.select(_C).order_by(_C.c.id)
        if org_id is not None:
            stmt = stmt.where(_C.c.org_id == org_id)
        if holding_only:
            stmt = stmt.where(_C.c.state.in_(_HOLDING))
        with self.engines.read.connect() as conn:
            return [_cluster(r, self._volumes_of(conn, r.uid)) for r in conn.execute(stmt)]

    def update_cluster(self, uid: str, **values: Any) -> None:
        self.engines.write_tx(lambda conn: conn.execute(
            sa.update(_C).where(_C.c.uid == uid).values(**values, updated_at=self.clock())))

    def end_cluster(self, uid: str, state: ClusterState, message: str) -> None:
        """``released`` or ``failed``: no reservation, no attachment left (one transaction)."""
        def update(conn: sa.Connection) -> None:
            conn.execute(sa.delete(_A).where(_A.c.cluster_id == uid))
            conn.execute(sa.update(_C).where(_C.c.uid == uid).values(
                state=str(state), instances=[], message=message, updated_at=self.clock()))

        self.engines.write_tx(update)

    def jobs_on_cluster(self, uid: str, states: list[str]) -> list[Job]:
        """The cluster's jobs in ``states`` (e.g. the active ones, at a release)."""
        stmt = sa.select(t.jobs).where(t.jobs.c.cluster_id == uid, t.jobs.c.state.in_(states))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    # attachments -----------------------------------------------------------------------------
    def attach_volume(self, volume_id: int, cluster_uid: str) -> None:
        """Idempotent; 409 unless the cluster is ready."""
        def insert(conn: sa.Connection) -> None:
            state = conn.execute(sa.select(_C.c.state).where(_C.c.uid == cluster_uid)
                                 .with_for_update()).scalar()
            if state != ClusterState.READY:
                raise Conflict(f"cluster {cluster_uid} is {state or 'gone'}; attach needs a "
                               "ready cluster")
            found = conn.execute(sa.select(_A.c.volume_id).where(
                _A.c.volume_id == volume_id, _A.c.cluster_id == cluster_uid)).first()
            if not found:
                conn.execute(sa.insert(_A).values(volume_id=volume_id, cluster_id=cluster_uid,
                                                  attached_at=self.clock()))

        self.engines.write_tx(insert)

    def detach_volume(self, volume_id: int, cluster_uid: str) -> None:
        self.engines.write_tx(lambda conn: conn.execute(sa.delete(_A).where(
            _A.c.volume_id == volume_id, _A.c.cluster_id == cluster_uid)))

    # quotas ----------------------------------------------------------------------------------
    def set_org_max_gpus(self, org: str, max_gpus: int | None) -> None:
        def update(conn: sa.Connection) -> None:
            done = conn.execute(sa.update(t.orgs).where(t.orgs.c.name == org)
                                .values(max_gpus=max_gpus))
            if not done.rowcount:
                raise NotFound(f"org '{org}' not found")

        self.engines.write_tx(update)

    def org_gpu_usage(self, org: str) -> tuple[int, int | None, int]:
        """(org id, its own max_gpus or None, GPUs its clusters hold or will hold)."""
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.orgs).where(t.orgs.c.name == org)).first()
            if row is None:
                raise NotFound(f"org '{org}' not found")
            return row.id, row.max_gpus, self._org_gpus(conn, row.id, None)

    def _check_quota(self, conn: sa.Connection, org_id: int, gpus: int, skip: str | None,
                     default_quota: int | None) -> None:
        """The one quota rule: an org's clusters hold at most max_gpus GPUs."""
        org = conn.execute(sa.select(t.orgs).where(t.orgs.c.id == org_id)
                           .with_for_update()).one()
        limit = org.max_gpus if org.max_gpus is not None else default_quota
        if limit is None or gpus == 0:
            return
        held = self._org_gpus(conn, org_id, skip)
        if held + gpus > limit:
            raise QuotaExceeded(
                f"GPU quota exceeded for org '{org.name}': {held} of {limit} GPUs are claimed, "
                f"this asks for {gpus} more",
                {"max_gpus": limit, "claimed_gpus": held, "requested_gpus": gpus})

    @staticmethod
    def _org_gpus(conn: sa.Connection, org_id: int, skip: str | None) -> int:
        stmt = sa.select(sa.func.coalesce(sa.func.sum(_C.c.count * _C.c.gpus_per_instance), 0)
                         ).where(_C.c.org_id == org_id, _C.c.state.in_(_HOLDING))
        if skip is not None:
            stmt = stmt.where(_C.c.uid != skip)
        return int(conn.execute(stmt).scalar() or 0)

    @staticmethod
    def _volumes_of(conn: sa.Connection, cluster_uid: str) -> tuple[str, ...]:
        rows = conn.execute(sa.select(t.volumes.c.uid).join(_A, _A.c.volume_id == t.volumes.c.id)
                            .where(_A.c.cluster_id == cluster_uid).order_by(t.volumes.c.uid))
        return tuple(r.uid for r in rows)


class _Row:
    def __init__(self, values: dict[str, Any]):
        self._mapping = values
