"""Clusters in the SQL store, with their volume attachments.

A cluster's ``instances`` column is the one record of what it reserves: the daemon's
Allocator is rebuilt from it at start (``daemon/reconcile.py``). Every change is recorded with
its operation in one transaction, like volumes (``store/volumes.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.clusters import HOLDING, Cluster, ClusterState
from jobyard.core.models import Principal
from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import ClusterCheck
from jobyard.core.states import ACTIVE, TERMINAL, JobState
from jobyard.errors import Conflict, NotFound, QuotaExceeded
from jobyard.store import tables as t
from jobyard.store.db import Db, Repository, Row, inserted_id
from jobyard.store.operations import OPEN, SqlOperations
from jobyard.store.protection import set_protection

_C = t.clusters

_A = t.volume_attachments

_J = t.jobs

_R = t.operations

_HOLDING = [str(s) for s in HOLDING]

_LIVE = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]

_ENDED = [str(s) for s in TERMINAL]


def _cluster(row: Any, attachments: tuple[str, ...] = ()) -> Cluster:
    m = dict(row._mapping)
    m["state"] = ClusterState(m["state"])
    return Cluster(**m, attachments=attachments)


class SqlClusters(Repository):
    """Clusters: claims, edits and releases (each with its operation), attachments, quotas."""

    def __init__(self, db: Db, operations: SqlOperations):
        super().__init__(db)
        self.operations = operations

    def create_cluster(
        self, who: Principal, name: str, instance_type: str, count: int, gpus_each: int,
        default_quota: int | None,
    ) -> tuple[Operation, Cluster]:
        def insert(conn: sa.Connection) -> tuple[Operation, Cluster]:
            self._check_quota(conn, who.org_id, count * gpus_each, None, default_quota)
            now = self.clock()
            row: dict[str, Any] = {"uid": ids.cluster_uid(), "org_id": who.org_id,
                   "user_id": who.user_id,
                   "name": name, "instance_type": instance_type, "count": count,
                   "gpus_per_instance": gpus_each, "state": str(ClusterState.PENDING),
                   "instances": [], "message": None, "created_at": now, "updated_at": now}
            row["id"] = inserted_id(conn.execute(sa.insert(_C), row))
            req = self.operations.insert(conn, OperationType.CLUSTER_CLAIM, who, row["uid"],
                                       {"instance_type": instance_type, "count": count},
                                       "Cluster claim queued")
            return req, _cluster(Row(row))

        return self.engines.write_tx(insert)

    def cluster_operation(
        self, who: Principal, cluster: Cluster, kind: OperationType, params: dict[str, Any],
        check: ClusterCheck, message: str, gpus_after: int | None = None,
        default_quota: int | None = None,
    ) -> Operation:
        def insert(conn: sa.Connection) -> Operation:
            row = conn.execute(sa.select(_C).where(_C.c.id == cluster.id)
                               .with_for_update()).first()
            if row is None:
                raise NotFound(f"cluster {cluster.uid} not found")
            busy = conn.execute(sa.select(_R.c.uid).where(
                _R.c.object_id == cluster.uid, _R.c.status.in_(OPEN)).limit(1)).scalar()
            if busy:
                raise Conflict(f"cluster {cluster.uid} has a request in progress ({busy})",
                               {"request_id": busy})
            changes = check(_cluster(row, self._volumes_of(conn, cluster.uid)))
            if gpus_after is not None:
                self._check_quota(conn, row.org_id, gpus_after, cluster.uid, default_quota)
            if changes:
                conn.execute(sa.update(_C).where(_C.c.id == cluster.id)
                             .values(**changes, updated_at=self.clock()))
            return self.operations.insert(conn, kind, who, cluster.uid, params, message)

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
        def update(conn: sa.Connection) -> None:
            conn.execute(sa.delete(_A).where(_A.c.cluster_id == uid))
            conn.execute(sa.update(_C).where(_C.c.uid == uid).values(
                state=str(state), instances=[], message=message, updated_at=self.clock()))

        self.engines.write_tx(update)

    # attachments -----------------------------------------------------------------------------
    def attach_volume(self, volume_id: int, cluster_uid: str) -> None:
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

    def org_gpu_usage(self, org: str) -> tuple[int, int | None, int]:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.orgs).where(t.orgs.c.name == org)).first()
            if row is None:
                raise NotFound(f"org '{org}' not found")
            return row.id, row.max_gpus, self._org_gpus(conn, row.id, None)

    def set_protection(self, uid: str, on: bool, states: Collection[str]) -> str | None:
        return set_protection(self.engines, self.clock, _C, uid, on, states)

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

    def cluster_by_number(self, cluster_id: int) -> Cluster | None:
        with self.engines.read.connect() as conn:
            uid = conn.execute(sa.select(_C.c.uid).where(_C.c.id == cluster_id)).scalar()
        return self.get_cluster(uid) if uid else None

    def cluster_page(self, org_id: int, offset: int, limit: int,
                     states: Collection[str] | None = None) -> tuple[list[Cluster], int]:
        where = [_C.c.org_id == org_id]
        if states is not None:
            where.append(_C.c.state.in_(list(states)))
        with self.engines.read.connect() as conn:
            uids = [r.uid for r in conn.execute(
                sa.select(_C.c.uid).where(*where).order_by(_C.c.id.desc())
                .offset(offset).limit(limit))]
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_C)
                                     .where(*where)).scalar_one())
        clusters = [self.get_cluster(uid) for uid in uids]
        return [c for c in clusters if c is not None], total

    def cluster_facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        uids = sorted(set(uids))
        facts: dict[str, dict[str, Any]] = {
            uid: {"open": None, "claimed_at": None, "released_at": None, "live_jobs": 0,
                  "last_job_end": None} for uid in uids}
        if not uids:
            return facts
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(_R.c.object_id, _R.c.type, _R.c.status,
                                          _R.c.finished_at)
                                .where(_R.c.object_id.in_(uids)).order_by(_R.c.id))
            for r in rows:
                f = facts[str(r.object_id)]
                if r.status in ("PENDING", "PROCESSING", "RETRYING"):
                    f["open"] = r.status
                elif r.status == "COMPLETED" and r.type == "CLUSTER_CLAIM":
                    f["claimed_at"] = r.finished_at
                elif r.status == "COMPLETED" and r.type == "CLUSTER_RELEASE":
                    f["released_at"] = r.finished_at
            live = conn.execute(sa.select(_J.c.cluster_id, sa.func.count())
                                .where(_J.c.cluster_id.in_(uids), _J.c.state.in_(_LIVE))
                                .group_by(_J.c.cluster_id))
            for r in live:
                facts[str(r[0])]["live_jobs"] = int(r[1])
            ended = conn.execute(sa.select(_J.c.cluster_id, sa.func.max(_J.c.finished_at))
                                 .where(_J.c.cluster_id.in_(uids), _J.c.state.in_(_ENDED))
                                 .group_by(_J.c.cluster_id))
            for uid, last in ended:
                facts[str(uid)]["last_job_end"] = last
        return facts
