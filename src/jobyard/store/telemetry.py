"""Telemetry in the SQL store: metric series, collected outputs, spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa

from jobyard.core.models import Job
from jobyard.core.ports import SampleWrite
from jobyard.core.states import TERMINAL, JobState
from jobyard.store import tables as t
from jobyard.store.db import Repository
from jobyard.store.rows import job_from_row


class SqlTelemetry(Repository):
    """What running jobs are measured to use and leave behind, and what they cost."""

    # resource metrics and budgets (jobyard.daemon.plugins.sampler) -----------------------------
    def record_samples(self, writes: Sequence[SampleWrite]) -> dict[int, int | None]:
        now = self.clock()

        def write(conn: sa.Connection, batch: Sequence[SampleWrite]) -> dict[int, int | None]:
            done = {}
            for w in batch:
                written, points = _write_sample(conn, w, now)
                if written:
                    done[w.job_id] = points
            return done

        done: dict[int, int | None] = {}
        if self.engines.is_sqlite:
            done = self.engines.write_tx(lambda conn: write(conn, writes)) if writes else {}
        else:
            for w in writes:
                done.update(self.engines.write_tx(partial(write, batch=[w])))
        if done:
            self.on_change(done)
        return done

    def metric_points(self, job_id: int, attempt: int) -> int:
        c = t.job_metrics.c
        stmt = sa.select(sa.func.count()).where(c.job_id == job_id, c.attempt == attempt)
        with self.engines.read.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def metric_series(self, job_id: int, attempt: int) -> list[tuple[float, dict[str, Any]]]:
        c = t.job_metrics.c
        stmt = (sa.select(c.ts, c.data).where(c.job_id == job_id, c.attempt == attempt)
                .order_by(c.ts, c.id))
        with self.engines.read.connect() as conn:
            return [(r.ts, r.data) for r in conn.execute(stmt)]

    def purge_metrics(self, ended_before: float) -> int:
        old = sa.select(t.jobs.c.id).where(t.jobs.c.finished_at < ended_before)
        stmt = sa.delete(t.job_metrics).where(t.job_metrics.c.job_id.in_(old))
        return int(self.engines.write_tx(lambda conn: conn.execute(stmt).rowcount) or 0)

    def settled_spend(self, user_id: int | None = None, org_id: int | None = None) -> float:
        c = t.jobs.c
        stmt = sa.select(sa.func.coalesce(sa.func.sum(c.telemetry["total_cost"].as_float()), 0.0))
        stmt = stmt.where(c.state.in_([str(s) for s in TERMINAL]), _owner(user_id, org_id))
        with self.engines.read.connect() as conn:
            return float(conn.execute(stmt).scalar_one())

    def unsettled_jobs(self, user_id: int | None = None, org_id: int | None = None) -> list[Job]:
        c = t.jobs.c
        stmt = sa.select(t.jobs).where(c.state.not_in([str(s) for s in TERMINAL]),
                                       _owner(user_id, org_id))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def record_outputs(self, job_id: int, attempt: int, files: list[dict[str, Any]]) -> None:
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


def _write_sample(conn: sa.Connection, w: SampleWrite, now: float) -> tuple[bool, int | None]:
    """Write one job's part of a round: ``(written, points after thinning or None)``; not
    written when the job ended or moved to another attempt meanwhile."""
    row = conn.execute(
        sa.select(t.jobs.c.state, t.jobs.c.attempt, t.jobs.c.telemetry)
        .where(t.jobs.c.id == w.job_id).with_for_update()
    ).first()
    if row is None or JobState(row.state).is_terminal or row.attempt != w.attempt:
        return False, None
    points = _thin(conn, w.job_id, w.attempt, w.thin_to) if w.thin_to else None
    if w.point is not None:
        conn.execute(sa.insert(t.job_metrics).values(
            job_id=w.job_id, attempt=w.attempt, ts=w.ts, data=w.point))
        points = None if points is None else points + 1
    telemetry = {**(row.telemetry or {}), **w.patch}
    conn.execute(sa.update(t.jobs).where(t.jobs.c.id == w.job_id)
                 .values(telemetry=telemetry, updated_at=now))
    return True, points


def _thin(conn: sa.Connection, job_id: int, attempt: int, stride: int) -> int:
    c = t.job_metrics.c
    rows = conn.execute(
        sa.select(c.id, c.data).where(c.job_id == job_id, c.attempt == attempt)
    ).all()
    drop = [r.id for r in rows if int((r.data or {}).get("n", 0)) % stride]
    for i in range(0, len(drop), 500):
        conn.execute(sa.delete(t.job_metrics).where(c.id.in_(drop[i : i + 500])))
    return len(rows) - len(drop)


def _owner(user_id: int | None, org_id: int | None) -> sa.ColumnElement[bool]:
    if user_id is not None:
        return t.jobs.c.user_id == user_id
    return t.jobs.c.org_id == org_id
