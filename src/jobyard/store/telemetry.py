"""The SQL store's telemetry part: metric samples, budgets. Mixed into SqlStore."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jobyard.core.models import Job
from jobyard.core.states import TERMINAL, JobState
from jobyard.errors import NotFound
from jobyard.store import tables as t
from jobyard.store.rows import WRITABLE, job_from_row


class TelemetryStore:
    # resource metrics and budgets (jobyard.telemetry.sampler) ---------------------------------
    def record_samples(self, writes: Sequence[SampleWrite]) -> dict[int, int | None]:
        """Store one sampling round. For each job still active and on the same attempt: thin
        its series to ``thin_to`` (delete points whose ``n`` is not a multiple), add ``point``,
        merge ``patch`` into its telemetry. Returns, per job written, the number of points its
        attempt has when it was thinned (else None).

        SQLite writes the round in one transaction (one writer: nothing to deadlock with);
        PostgreSQL one per job, so a round never holds two row locks that a daemon batch might
        take in the other order.
        """
        now = self.clock()

        def write(conn: sa.Connection, batch: Sequence[SampleWrite]) -> dict[int, int | None]:
            return {w.job_id: left for w in batch
                    if (left := _write_sample(conn, w, now)) is not _SKIPPED}

        done: dict[int, int | None] = {}
        if self.engines.is_sqlite:
            done = self.engines.write_tx(lambda conn: write(conn, writes)) if writes else {}
        else:
            for w in writes:
                done.update(self.engines.write_tx(lambda conn, w=w: write(conn, [w])))
        if done:
            self.on_change(done)
        return done

    def metric_points(self, job_id: int, attempt: int) -> int:
        c = t.job_metrics.c
        stmt = sa.select(sa.func.count()).where(c.job_id == job_id, c.attempt == attempt)
        with self.engines.read.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def metric_series(self, job_id: int, attempt: int) -> list[tuple[float, dict[str, Any]]]:
        """``(ts, sample)`` of one attempt, oldest first."""
        c = t.job_metrics.c
        stmt = (sa.select(c.ts, c.data).where(c.job_id == job_id, c.attempt == attempt)
                .order_by(c.ts, c.id))
        with self.engines.read.connect() as conn:
            return [(r.ts, r.data) for r in conn.execute(stmt)]

    def purge_metrics(self, ended_before: float) -> int:
        """Delete the series of jobs that ended before ``ended_before``."""
        old = sa.select(t.jobs.c.id).where(t.jobs.c.finished_at < ended_before)
        stmt = sa.delete(t.job_metrics).where(t.job_metrics.c.job_id.in_(old))
        return int(self.engines.write_tx(lambda conn: conn.execute(stmt).rowcount) or 0)

    def state_events(self, job_id: int) -> list[tuple[float, dict[str, Any]]]:
        """``(ts, data)`` of the job's state changes, in order (for cold-start phases)."""
        c = t.job_events.c
        stmt = (sa.select(c.ts, c.data).where(c.job_id == job_id, c.kind == "state")
                .order_by(c.id))
        with self.engines.read.connect() as conn:
            return [(r.ts, r.data) for r in conn.execute(stmt)]

    def set_budget(self, scope: str, name: str, budget: float | None) -> dict[str, Any] | None:
        """Set (or clear, with None) a user's or org's budget; None if there is no such one."""
        table, column = _BUDGET_SCOPES[scope]
        stmt = sa.update(table).where(column == name).values(budget=budget)
        if not self.engines.write_tx(lambda conn: conn.execute(stmt).rowcount):
            return None
        return self.get_budget(scope, name)

    def get_budget(self, scope: str, name: str) -> dict[str, Any] | None:
        """``{"id", "name", "org_id", "budget"}`` of a user or org; None if there is none."""
        table, column = _BUDGET_SCOPES[scope]
        org = table.c.org_id if scope == "user" else table.c.id
        stmt = sa.select(table.c.id, column.label("name"), org.label("org_id"), table.c.budget)
        with self.engines.read.connect() as conn:
            row = conn.execute(stmt.where(column == name)).first()
        return dict(row._mapping) if row else None

    def budgets(self, user_ids: Iterable[int], org_ids: Iterable[int]
                ) -> tuple[dict[int, float], dict[int, float]]:
        """The budgets set among these users and orgs: ``({user_id: b}, {org_id: b})``."""
        users, orgs = list(set(user_ids)), list(set(org_ids))
        with self.engines.read.connect() as conn:
            u = conn.execute(sa.select(t.users.c.id, t.users.c.budget).where(
                t.users.c.id.in_(users), t.users.c.budget.is_not(None))) if users else []
            o = conn.execute(sa.select(t.orgs.c.id, t.orgs.c.budget).where(
                t.orgs.c.id.in_(orgs), t.orgs.c.budget.is_not(None))) if orgs else []
            return {r.id: r.budget for r in u}, {r.id: r.budget for r in o}

    def settled_spend(self, user_id: int | None = None, org_id: int | None = None) -> float:
        """The total cost of a user's (or an org's) jobs that have ended."""
        c = t.jobs.c
        stmt = sa.select(sa.func.coalesce(sa.func.sum(c.telemetry["total_cost"].as_float()), 0.0))
        stmt = stmt.where(c.state.in_([str(s) for s in TERMINAL]), _owner(user_id, org_id))
        with self.engines.read.connect() as conn:
            return float(conn.execute(stmt).scalar_one())

    def unsettled_jobs(self, user_id: int | None = None, org_id: int | None = None) -> list[Job]:
        """A user's (or an org's) jobs that have not ended (their cost may still grow)."""
        c = t.jobs.c
        stmt = sa.select(t.jobs).where(c.state.not_in([str(s) for s in TERMINAL]),
                                       _owner(user_id, org_id))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    # progress reports (jobyard.telemetry.progress) -------------------------------------------
    def update_telemetry(
        self,
        ref: int | str,
        change: Callable[[Job], TelemetryChange | None],
    ) -> tuple[Job, TelemetryChange | None]:
        """Read-modify-write of one job's telemetry, in one write transaction.

        ``change`` gets the job (its row locked) and returns ``(patch, fields, event)`` — a
        telemetry patch merged at the top level, column values (e.g. ``substate``) and an
        optional ``(kind, data)`` for a ``job_events`` row — or None to write nothing. It may
        raise to refuse (e.g. Conflict once the job ended). Streams are woken only when an
        event was written: most reports change no event stream.
        """
        column = t.jobs.c.id if isinstance(ref, int) else t.jobs.c.uid
        now = self.clock()

        def update(conn: sa.Connection) -> tuple[Job, TelemetryChange | None]:
            row = conn.execute(sa.select(t.jobs).where(column == ref).with_for_update()).first()
            if row is None:
                raise NotFound(f"job {ref} not found")
            job = job_from_row(row)
            result = change(job)
            if result is None:
                return job, None
            patch, fields, event = result
            if set(fields) - WRITABLE:
                raise ValueError(f"not writable: {sorted(set(fields) - WRITABLE)}")
            job.telemetry = {**job.telemetry, **patch}
            values = {**fields, "telemetry": job.telemetry, "updated_at": now}
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job.id).values(values))
            for name, value in fields.items():
                setattr(job, name, value)
            if event is not None:
                self._record_event(conn, job, now, event[0], event[1])
            return job, result

        job, result = self.engines.write_tx(update)
        if result is not None and result[2] is not None:
            self.on_change((job.id,))
        return job, result


# (telemetry patch, column values, (event kind, event data) or None)
TelemetryChange = tuple[dict[str, Any], dict[str, Any], tuple[str, dict[str, Any]] | None]


@dataclass(frozen=True, slots=True)
class SampleWrite:
    """One job's part of a sampling round (see :meth:`TelemetryStore.record_samples`)."""

    job_id: int
    attempt: int
    ts: float
    point: dict[str, Any] | None  # the sample to store, or None (thinned out)
    patch: dict[str, Any]  # merged into the job's telemetry
    thin_to: int | None = None  # delete the attempt's points whose n is not a multiple


_SKIPPED: Any = object()


def _write_sample(conn: sa.Connection, w: SampleWrite, now: float) -> int | None:
    row = conn.execute(
        sa.select(t.jobs.c.state, t.jobs.c.attempt, t.jobs.c.telemetry)
        .where(t.jobs.c.id == w.job_id).with_for_update()
    ).first()
    if row is None or JobState(row.state).is_terminal or row.attempt != w.attempt:
        return _SKIPPED
    points = _thin(conn, w.job_id, w.attempt, w.thin_to) if w.thin_to else None
    if w.point is not None:
        conn.execute(sa.insert(t.job_metrics).values(
            job_id=w.job_id, attempt=w.attempt, ts=w.ts, data=w.point))
        points = None if points is None else points + 1
    telemetry = {**(row.telemetry or {}), **w.patch}
    conn.execute(sa.update(t.jobs).where(t.jobs.c.id == w.job_id)
                 .values(telemetry=telemetry, updated_at=now))
    return points


_BUDGET_SCOPES = {"user": (t.users, t.users.c.username), "org": (t.orgs, t.orgs.c.name)}


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
