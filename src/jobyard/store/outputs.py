"""The SQL store's outputs part: files collected from a job's output directory."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from jobyard.store import tables as t


class OutputsStore:
    engines: Any
    clock: Any

    def record_outputs(self, job_id: int, attempt: int, files: list[dict[str, Any]]) -> None:
        """Replace the attempt's output list (collecting again is idempotent)."""
        now = self.clock()
        rows = [{**f, "job_id": job_id, "attempt": attempt, "created_at": now} for f in files]

        def write(conn: sa.Connection) -> None:
            conn.execute(
                sa.delete(t.job_outputs).where(
                    t.job_outputs.c.job_id == job_id, t.job_outputs.c.attempt == attempt
                )
            )
            if rows:
                conn.execute(sa.insert(t.job_outputs), rows)

        self.engines.write_tx(write)

    def list_outputs(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        c = t.job_outputs.c
        stmt = sa.select(t.job_outputs).where(c.job_id == job_id).order_by(c.attempt, c.name)
        if attempt is not None:
            stmt = stmt.where(c.attempt == attempt)
        with self.engines.read.connect() as conn:
            return [
                {"name": r.name, "size": r.size, "records": r.records, "partial": bool(r.partial),
                 "attempt": r.attempt, "created_at": r.created_at}
                for r in conn.execute(stmt)
            ]
