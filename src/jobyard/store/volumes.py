"""Storage volumes in the SQL store.

A mutation is recorded as an operation row, in the same transaction as what it reserves (a new
volume's name, a destroy's ``destroying`` state), so a 202 always has its operation and the
operation processor (``jobyard.operations.processor``) finds it after any restart.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.models import Principal
from jobyard.core.operations import Operation, OperationType
from jobyard.core.ports import VolumeCheck
from jobyard.core.volumes import Volume, VolumeState
from jobyard.errors import Conflict, NotFound
from jobyard.store import tables as t
from jobyard.store.db import Db, Repository, Row, inserted_id
from jobyard.store.operations import OPEN, SqlOperations
from jobyard.store.protection import set_protection

_R = t.operations

_V = t.volumes

_A = t.volume_attachments


def _volume(row: Any, attachments: tuple[str, ...] = ()) -> Volume:
    m = dict(row._mapping)
    m["state"] = VolumeState(m["state"])
    return Volume(**m, attachments=attachments)


class SqlVolumes(Repository):
    """Volumes: creates, edits and destroys (each with its operation), measured usage."""

    def __init__(self, db: Db, operations: SqlOperations):
        super().__init__(db)
        self.operations = operations

    # volumes ---------------------------------------------------------------------------------
    def create_volume(self, who: Principal, name: str, size_bytes: int) -> tuple[Operation, Volume]:
        def insert(conn: sa.Connection) -> tuple[Operation, Volume]:
            self._name_free(conn, who.org_id, name)
            now = self.clock()
            row: dict[str, Any] = {"uid": ids.volume_uid(), "org_id": who.org_id,
                   "user_id": who.user_id,
                   "name": name, "size_bytes": size_bytes, "state": str(VolumeState.CREATING),
                   "used_bytes": None, "used_checked_at": None, "created_at": now,
                   "updated_at": now}
            row["id"] = inserted_id(conn.execute(sa.insert(_V), row))
            req = self.operations.insert(conn, OperationType.STORAGE_CREATE, who, row["uid"],
                                       {"name": name, "size_bytes": size_bytes},
                                       "Storage volume creation queued")
            return req, _volume(Row(row))

        return self.engines.write_tx(insert)

    def volume_operation(
        self, who: Principal, volume: Volume, kind: OperationType, params: dict[str, Any],
        check: VolumeCheck, message: str,
    ) -> Operation:
        def insert(conn: sa.Connection) -> Operation:
            row = conn.execute(sa.select(_V).where(_V.c.id == volume.id).with_for_update()).first()
            if row is None:
                raise NotFound(f"storage volume {volume.uid} not found")
            busy = conn.execute(sa.select(_R.c.uid).where(
                _R.c.object_id == volume.uid, _R.c.status.in_(OPEN)).limit(1)).scalar()
            if busy:
                raise Conflict(f"storage volume {volume.uid} has a request in progress ({busy})",
                               {"request_id": busy})
            fresh = _volume(row, self._attachments(conn, volume.id))
            changes = check(fresh)
            if "name" in params and params["name"] != fresh.name:
                self._name_free(conn, fresh.org_id, params["name"])
            if changes:
                conn.execute(sa.update(_V).where(_V.c.id == volume.id)
                             .values(**changes, updated_at=self.clock()))
            return self.operations.insert(conn, kind, who, volume.uid, params, message)

        return self.engines.write_tx(insert)

    def get_volume(self, uid: str) -> Volume | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_V).where(_V.c.uid == uid)).first()
            return _volume(row, self._attachments(conn, row.id)) if row else None

    def list_volumes(self, org_id: int | None) -> list[Volume]:
        stmt = sa.select(_V).order_by(_V.c.id)
        if org_id is not None:
            stmt = stmt.where(_V.c.org_id == org_id)
        with self.engines.read.connect() as conn:
            return [_volume(r, self._attachments(conn, r.id)) for r in conn.execute(stmt)]

    def update_volume(self, uid: str, **values: Any) -> None:
        self.engines.write_tx(lambda conn: conn.execute(
            sa.update(_V).where(_V.c.uid == uid).values(**values, updated_at=self.clock())))

    def rename_volume(self, uid: str, name: str, size_bytes: int | None) -> None:
        def update(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(_V).where(_V.c.uid == uid).with_for_update()).one()
            if name != row.name:
                self._name_free(conn, row.org_id, name)
            conn.execute(sa.update(_V).where(_V.c.uid == uid).values(
                name=name, size_bytes=size_bytes or row.size_bytes, updated_at=self.clock()))

        self.engines.write_tx(update)

    def delete_volume(self, uid: str) -> None:
        def delete(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(_V).where(_V.c.uid == uid).with_for_update()).first()
            if row is None:
                return
            if self._attachments(conn, row.id):
                raise Conflict(f"storage volume {uid} is attached to a cluster")
            conn.execute(sa.delete(_V).where(_V.c.id == row.id))

        self.engines.write_tx(delete)

    def set_volume_usage(self, usage: dict[str, int], at: float) -> None:
        def update(conn: sa.Connection) -> None:
            for uid, used in usage.items():
                conn.execute(sa.update(_V).where(_V.c.uid == uid)
                             .values(used_bytes=used, used_checked_at=at))

        if usage:
            self.engines.write_tx(update)

    def set_protection(self, uid: str, on: bool, states: Collection[str]) -> str | None:
        return set_protection(self.engines, self.clock, _V, uid, on, states)

    def _name_free(self, conn: sa.Connection, org_id: int, name: str) -> None:
        taken = conn.execute(sa.select(_V.c.uid).where(
            _V.c.org_id == org_id, _V.c.name == name)).scalar()
        if taken:
            raise Conflict(f"a storage volume named '{name}' already exists ({taken})",
                           {"storage_id": taken})

    @staticmethod
    def _attachments(conn: sa.Connection, volume_id: int) -> tuple[str, ...]:
        rows = conn.execute(sa.select(_A.c.cluster_id).where(_A.c.volume_id == volume_id)
                            .order_by(_A.c.cluster_id))
        return tuple(r.cluster_id for r in rows)
