"""Endpoints in the SQL store (TensorOne's ``ep_...`` job templates).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from jobyard.core.endpoints import Endpoint
from jobyard.core.models import Resources
from jobyard.errors import Conflict
from jobyard.store import tables as t
from jobyard.store.db import Repository, inserted_id

_E = t.endpoints

def _endpoint(row: Any) -> Endpoint:
    res = row.resources or {}
    return Endpoint(
        id=row.id, uid=row.uid, org_id=row.org_id, user_id=row.user_id, name=row.name,
        command=row.command, env=dict(row.env or {}),
        resources=Resources(gpus=int(res.get("gpus", 0)), cpus=float(res.get("cpus", 1.0)),
                            memory_mb=int(res.get("memory_mb", 0))),
        time_limit_s=row.time_limit_s, created_at=row.created_at, updated_at=row.updated_at,
    )


class SqlEndpoints(Repository):
    """Endpoints of an org (their ids are unique server-wide)."""

    def create_endpoint(self, row: dict[str, Any]) -> Endpoint:
        taken = Conflict(f"endpoint {row['uid']} already exists; pick another name",
                         {"endpoint_id": row["uid"]})

        def insert(conn: sa.Connection) -> Endpoint:
            if conn.execute(sa.select(_E.c.id).where(_E.c.uid == row["uid"])).first():
                raise taken
            new_id = inserted_id(conn.execute(sa.insert(_E).values(**row)))
            return _endpoint(conn.execute(sa.select(_E).where(_E.c.id == new_id)).one())

        try:
            return self.engines.write_tx(insert)
        except sa.exc.IntegrityError as exc:  # two creates of one name at once
            raise taken from exc

    def get_endpoint(self, uid: str) -> Endpoint | None:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(_E).where(_E.c.uid == uid)).first()
        return _endpoint(row) if row else None

    def list_endpoints(self, org_id: int | None, limit: int = 500) -> list[Endpoint]:
        stmt = sa.select(_E).order_by(_E.c.id).limit(limit)
        if org_id is not None:
            stmt = stmt.where(_E.c.org_id == org_id)
        with self.engines.read.connect() as conn:
            return [_endpoint(r) for r in conn.execute(stmt)]

    def delete_endpoint(self, uid: str) -> bool:
        return bool(self.engines.write_tx(
            lambda conn: conn.execute(sa.delete(_E).where(_E.c.uid == uid)).rowcount))
