"""Async operations in the SQL store (the table keeps its first name, ``requests``).

Clusters and volumes record an operation in the same transaction as what it reserves
(:meth:`SqlOperations.insert`); the operation processor (``jobyard.operations.processor``)
finds it after any restart.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from jobyard import ids
from jobyard.core.models import Principal
from jobyard.core.operations import TERMINAL, Operation, OperationStatus, OperationType, can_move
from jobyard.errors import Conflict
from jobyard.store import tables as t
from jobyard.store.db import Repository, Row, inserted_id

_R = t.operations

OPEN = [str(s) for s in OperationStatus if s not in TERMINAL]

def _operation(row: Any) -> Operation:
    m = dict(row._mapping)
    m["type"], m["status"] = OperationType(m["type"]), OperationStatus(m["status"])
    return Operation(**m)


class SqlOperations(Repository):
    """Operations: recorded with what they act on, moved only along ``core.operations.MOVES``."""

    # operations --------------------------------------------------------------------------------
    def insert(
        self, conn: sa.Connection, kind: OperationType, who: Principal, object_id: str | None,
        params: dict[str, Any], message: str,
    ) -> Operation:
        """A new PENDING operation on ``object_id``, inside the caller's transaction."""
        now = self.clock()
        row = {"uid": ids.request_uid(), "type": str(kind), "status": str(OperationStatus.PENDING),
               "org_id": who.org_id, "user_id": who.user_id, "object_id": object_id,
               "params": params, "external_message": message, "attempts": 0,
               "next_attempt_at": now, "created_at": now, "updated_at": now,
               "finished_at": None}
        row["id"] = inserted_id(conn.execute(sa.insert(_R), row))
        return _operation(Row(row))

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
        wanted = [str(OperationStatus.PENDING), str(OperationStatus.RETRYING)]
        if processing:
            wanted.append(str(OperationStatus.PROCESSING))
        stmt = (sa.select(_R).where(_R.c.status.in_(wanted), _R.c.next_attempt_at <= now)
                .order_by(_R.c.next_attempt_at, _R.c.id).limit(limit + len(skip)))
        with self.engines.read.connect() as conn:
            return [_operation(r) for r in conn.execute(stmt) if r.id not in skip][:limit]

    def move_operation(self, req: Operation, status: OperationStatus, **values: Any) -> Operation:
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
            return _operation(Row({**row._mapping, **changes}))

        return self.engines.write_tx(update)
