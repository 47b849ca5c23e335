"""Small shared state in the SQL store: a key-value table (the server secret, the scheduler's
snapshot, dialects' own facts).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from jobyard.store import tables as t
from jobyard.store.db import Repository


class SqlKv(Repository):
    """JSON values by key."""

    # kv --------------------------------------------------------------------------------------
    def put_kv(self, key: str, value: Any) -> None:
        now = self.clock()

        def upsert(conn: sa.Connection) -> None:
            updated = conn.execute(
                sa.update(t.kv).where(t.kv.c.key == key).values(value=value, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(t.kv).values(key=key, value=value, updated_at=now))

        self.engines.write_tx(upsert)

    def get_kv(self, key: str) -> Any:
        with self.engines.read.connect() as conn:
            row = conn.execute(sa.select(t.kv.c.value).where(t.kv.c.key == key)).first()
        return row[0] if row else None

    def kv_many(self, keys: Collection[str]) -> dict[str, Any]:
        if not keys:
            return {}
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.kv.c.key, t.kv.c.value)
                                .where(t.kv.c.key.in_(sorted(set(keys)))))
            return {r.key: r.value for r in rows}

    def kv_prefixed(self, prefix: str) -> dict[str, Any]:
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.kv.c.key, t.kv.c.value)
                                .where(t.kv.c.key.startswith(prefix, autoescape=True)))
            return {r.key: r.value for r in rows}
