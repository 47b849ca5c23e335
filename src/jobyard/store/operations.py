"""The SQL store's async operations and storage volumes. Mixed into SqlStore.

A mutation is recorded as a operation row, in the same transaction as what it reserves (a new
volume's name, a destroy's ``destroying`` state), so a 202 always has its operation and the
operation processor (``jobyard.operations.processor``) finds it after any restart.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.models import Principal
from jobyard.core.operations import TERMINAL, Operation, OperationStatus, OperationType, can_move
from jobyard.core.volumes import Volume, VolumeState
from jobyard.errors import Conflict, NotFound
from jobyard.store import tables as t

_R = t.operations
_V = t.volumes
_A = t.volume_attachments
_OPEN = [str(s) for s in OperationStatus if s not in TERMINAL]
VolumeCheck = Callable[[Volume], dict[str, Any] | None]  # raises to refuse; returns changes


def _operation(row: Any) -> Operation:
    m = dict(row._mapping)
    m["type"], m["status"] = OperationType(m["type"]), OperationStatus(m["status"])
    return Operation(**m)


def _volume(row: Any, attachments: tuple[str, ...] = ()) -> Volume:
    m = dict(row._mapping)
    m["state"] = VolumeState(m["state"])
    return Volume(**m, attachments=attachments)


class OperationStore:
    engines: Any
    clock: Callable[[], float]

    # operations --------------------------------------------------------------------------------
    def _insert_operation(
        self, conn: sa.Connection, kind: OperationType, who: Principal, object_id: str | None,
        params: dict[str, Any], message: str,
    ) -> Operation:
        now = self.clock()
        row = {"uid": ids.request_uid(), "type": str(kind), "status": str(OperationStatus.PENDING),
               "org_id": who.org_id, "user_id": who.user_id, "object_id": object_id,
               "params": params, "external_message": message, "attempts": 0,
               "next_attempt_at": now, "created_at": now, "updated_at": now,
               "finished_at": None}
        row["id"] = conn.execute(sa.insert(_R), row).inserted_primary_key[0]
        return _operation(_Row(row))

    def get_operation(self, uid: str) -> Operation | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_R).where(_R.c.uid == uid)).first()
        return _operation(row) if row else None

    def list_operations(self, org_id: int | None, limit: int) -> list[Operation]:
        stmt = sa.select(_R).order_by(_R.c.id.desc()).limit(limit)
        if org_id is not None:
            stmt = stmt.where(_R.c.org_id == org_id)
        with self.engines.read.connect() as conn:
            return [_operation(r) for r in conn.execute(stmt)]

    def due_operations(
        self, now: float, limit: int, skip: Collection[int] = (), processing: bool = False
    ) -> list[Operation]:
        """PENDING and due RETRYING operations, oldest first; with ``processing``, also those
        left PROCESSING (by a leader that crashed: call it only when leadership starts)."""
        wanted = [str(OperationStatus.PENDING), str(OperationStatus.RETRYING)]
        if processing:
            wanted.append(str(OperationStatus.PROCESSING))
        stmt = (sa.select(_R).where(_R.c.status.in_(wanted), _R.c.next_attempt_at <= now)
                .order_by(_R.c.next_attempt_at, _R.c.id).limit(limit + len(skip)))
        with self.engines.read.connect() as conn:
            return [_operation(r) for r in conn.execute(stmt) if r.id not in skip][:limit]

    def move_operation(self, req: Operation, status: OperationStatus, **values: Any) -> Operation:
        """Move ``req`` to ``status`` (checked against ``core.operations.MOVES``)."""
        def update(conn: sa.Connection) -> Operation:
            row = conn.execute(sa.select(_R).where(_R.c.id == req.id).with_for_update()).one()
            current = OperationStatus(row.status)
            if not can_move(current, status):
                raise Conflict(f"request {req.uid} cannot move from {current} to {status}")
            now = self.clock()
            changes = {"status": str(status), "updated_at": now, **values}
            if status in TERMINAL:
                changes |= {"finished_at": now, "next_attempt_at": None}
            conn.execute(sa.update(_R).where(_R.c.id == req.id).values(**changes))
            return _operation(_Row({**row._mapping, **changes}))

        return self.engines.write_tx(update)

    # volumes ---------------------------------------------------------------------------------
    def create_volume(self, who: Principal, name: str, size_bytes: int) -> tuple[Operation, Volume]:
        """A new volume (``creating``) and its STORAGE_CREATE operation; 409 on a taken name."""
        def insert(conn: sa.Connection) -> tuple[Operation, Volume]:
            self._name_free(conn, who.org_id, name)
            now = self.clock()
            row = {"uid": ids.volume_uid(), "org_id": who.org_id, "user_id": who.user_id,
                   "name": name, "size_bytes": size_bytes, "state": str(VolumeState.CREATING),
                   "used_bytes": None, "used_checked_at": None, "created_at": now,
                   "updated_at": now}
            row["id"] = conn.execute(sa.insert(_V), row).inserted_primary_key[0]
            req = self._insert_operation(conn, OperationType.STORAGE_CREATE, who, row["uid"],
                                       {"name": name, "size_bytes": size_bytes},
                                       "Storage volume creation queued")
            return req, _volume(_Row(row))

        return self.engines.write_tx(insert)

    def volume_operation(
        self, who: Principal, volume: Volume, kind: OperationType, params: dict[str, Any],
        check: VolumeCheck, message: str,
    ) -> Operation:
        """Record ``kind`` on ``volume`` after ``check`` passed on its locked, fresh row (one
        open operation per volume at a time: 409 otherwise)."""
        def insert(conn: sa.Connection) -> Operation:
            row = conn.execute(sa.select(_V).where(_V.c.id == volume.id).with_for_update()).first()
            if row is None:
                raise NotFound(f"storage volume {volume.uid} not found")
            busy = conn.execute(sa.select(_R.c.uid).where(
                _R.c.object_id == volume.uid, _R.c.status.in_(_OPEN)).limit(1)).scalar()
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
            return self._insert_operation(conn, kind, who, volume.uid, params, message)

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
        """Apply an edit; 409 when another volume of the org took ``name`` meanwhile."""
        def update(conn: sa.Connection) -> None:
            row = conn.execute(sa.select(_V).where(_V.c.uid == uid).with_for_update()).one()
            if name != row.name:
                self._name_free(conn, row.org_id, name)
            conn.execute(sa.update(_V).where(_V.c.uid == uid).values(
                name=name, size_bytes=size_bytes or row.size_bytes, updated_at=self.clock()))

        self.engines.write_tx(update)

    def delete_volume(self, uid: str) -> None:
        """Forget a volume; 409 while it is attached."""
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


class _Row:
    """A dict that looks like a result row to ``_request``/``_volume``."""

    def __init__(self, values: dict[str, Any]):
        self._mapping = values
