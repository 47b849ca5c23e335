"""Jobs in the SQL store: rows, tags, idempotency keys and their events.

Every state change goes through :meth:`SqlJobs.apply`, which checks each move against the
transition table and writes a ``job_events`` row (and its outbox rows, :mod:`jobyard.store.events`)
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, JobEvent, Resources
from jobyard.core.ports import NewJob, QueuedJob, TelemetryChange, Transition
from jobyard.core.states import ACTIVE, TERMINAL, JobState, check_transition
from jobyard.errors import Conflict, JobyardError, NotFound
from jobyard.store import tables as t
from jobyard.store.accounts import usernames_in
from jobyard.store.db import Db, Repository, inserted_id
from jobyard.store.engine import Prepared
from jobyard.store.events import EventWriter
from jobyard.store.rows import WRITABLE, event_from_row, job_from_row, job_to_row

# Hot statements, built once (each costs more to build than to run).
_INSERT_JOB = sa.insert(t.jobs)

_JOB_BY_ID = sa.select(t.jobs).where(t.jobs.c.id == sa.bindparam("ref"))

_JOB_FOR_UPDATE = _JOB_BY_ID.with_for_update()

# The SET clause comes from the parameters given (SQLAlchemy caches one form per column set).
_UPDATE_JOB = sa.update(t.jobs).where(t.jobs.c.id == sa.bindparam("ref"))

_JOB_BY_UID = sa.select(t.jobs).where(t.jobs.c.uid == sa.bindparam("ref"))

# Tables whose rows belong to one job (all reference jobs.id).
_CHILDREN = (t.job_tags, t.job_events, t.job_metrics, t.job_outputs, t.idempotency_keys)

_J = t.jobs

_C = t.clusters

_LIVE = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]



class SqlJobs(Repository):
    """Jobs: create, read, move (through the transition table), delete."""

    def __init__(self, db: Db, events: EventWriter):
        super().__init__(db)
        self.record_event = events.record
        self._job_by_id = Prepared(db.engines.read, _JOB_BY_ID)
        self._job_by_uid = Prepared(db.engines.read, _JOB_BY_UID)

    # jobs ------------------------------------------------------------------------------------
    def create_job(self, new: NewJob) -> tuple[Job, bool]:
        job = new.job

        def insert(conn: sa.Connection) -> tuple[Job, bool]:
            if new.idempotency:
                key, fingerprint = new.idempotency
                prior = conn.execute(
                    sa.select(t.idempotency_keys).where(
                        t.idempotency_keys.c.user_id == job.user_id,
                        t.idempotency_keys.c.key == key,
                    )
                ).first()
                if prior is not None:
                    if prior.fingerprint != fingerprint:
                        raise Conflict(
                            "this Idempotency-Key was already used with a different request",
                            {"idempotency_key": key},
                        )
                    row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == prior.job_id)).one()
                    return job_from_row(row), False
            job.id = inserted_id(conn.execute(_INSERT_JOB, job_to_row(job)))
            if job.tags:
                conn.execute(
                    sa.insert(t.job_tags), [{"job_id": job.id, "tag": tag} for tag in set(job.tags)]
                )
            self.record_event(
                conn, job, job.created_at, "state",
                {"from": None, "to": str(job.state), "attempt": job.attempt},
            )
            if new.idempotency:
                conn.execute(
                    sa.insert(t.idempotency_keys).values(
                        user_id=job.user_id,
                        key=new.idempotency[0],
                        fingerprint=new.idempotency[1],
                        job_id=job.id,
                        created_at=job.created_at,
                    )
                )
            return job, True

        result, created = self.engines.write_tx(insert)
        if created:
            result.updated_at = result.created_at
            self.on_change((result.id,))
        return result, created

    def get_job(self, ref: int | str) -> Job | None:
        query = self._job_by_id if isinstance(ref, int) else self._job_by_uid
        row = query.one(ref=ref)
        return job_from_row(row) if row else None

    def list_jobs(self, org_id: int | None, query: ListJobs) -> list[Job]:
        stmt = sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(query.limit)
        if org_id is not None:
            stmt = stmt.where(t.jobs.c.org_id == org_id)
        if query.state:
            stmt = stmt.where(t.jobs.c.state == query.state)
        if query.user_id is not None:
            stmt = stmt.where(t.jobs.c.user_id == query.user_id)
        if query.name:
            stmt = stmt.where(t.jobs.c.name == query.name)
        if query.before_id:
            stmt = stmt.where(t.jobs.c.id < query.before_id)
        if query.gpus is not None:
            stmt = stmt.where(t.jobs.c.gpus == query.gpus)
        if query.created_after is not None:
            stmt = stmt.where(t.jobs.c.created_at >= query.created_after)
        if query.created_before is not None:
            stmt = stmt.where(t.jobs.c.created_at < query.created_before)
        if query.tag:
            stmt = stmt.where(
                t.jobs.c.id.in_(sa.select(t.job_tags.c.job_id).where(t.job_tags.c.tag == query.tag))
            )
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def apply(self, transitions: Sequence[Transition]) -> list[Job | Exception]:
        now = self.clock()

        def apply_all(conn: sa.Connection) -> list[Job | Exception]:
            results: list[Job | Exception] = []
            for tr in transitions:
                try:
                    results.append(self._apply_one(conn, tr, now))
                except JobyardError as exc:
                    results.append(exc)
            return results

        results = self.engines.write_tx(apply_all)
        self.on_change([r.id for r in results if isinstance(r, Job)])
        return results

    def _apply_one(self, conn: sa.Connection, tr: Transition, now: float) -> Job:
        row = conn.execute(_JOB_FOR_UPDATE, {"ref": tr.job_id}).first()
        if row is None:
            raise NotFound(f"job {tr.job_id} not found")
        job = job_from_row(row)
        check_transition(job.state, tr.to)
        values = _checked(tr.fields)
        if tr.telemetry:
            values["telemetry"] = {**job.telemetry, **tr.telemetry}
        values["state"] = str(tr.to)
        values["updated_at"] = now
        if tr.to is JobState.RUNNING and job.started_at is None:
            values.setdefault("started_at", now)
        if tr.to.is_terminal:
            values.setdefault("finished_at", now)
        conn.execute(_UPDATE_JOB, {"ref": job.id, **values})
        data = {"from": str(job.state), "to": str(tr.to)}
        for name in ("substate", "exit_code", "message", "error", "attempt", "next_retry_at"):
            if name in values and values[name] is not None:
                data[name] = values[name]
        data.update(tr.event or {})
        for name, value in values.items():
            if name == "state":
                job.state = tr.to
            else:
                setattr(job, name, value)
        self.record_event(conn, job, now, "state", data)
        return job

    def update_fields(self, job_id: int, fields: dict[str, Any], event: str | None = None,
                      in_state: JobState | None = None) -> Job | None:
        values = _checked(fields)
        now = self.clock()
        values["updated_at"] = now
        where = [t.jobs.c.id == job_id]
        if in_state is not None:
            where.append(t.jobs.c.state == str(in_state))

        def update(conn: sa.Connection) -> Job | None:
            if conn.execute(sa.update(t.jobs).where(*where).values(values)).rowcount == 0:
                return None
            job = job_from_row(conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).one())
            if event:
                self.record_event(conn, job, now, event, dict(fields))
            return job

        job = self.engines.write_tx(update)
        if job is not None:
            self.on_change((job_id,))
        return job

    def merge_telemetry(
        self,
        job_id: int,
        patch: dict[str, Any],
        event: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        now = self.clock()
        extra = _checked(fields or {})

        def merge(conn: sa.Connection) -> Job:
            row = conn.execute(
                sa.select(t.jobs).where(t.jobs.c.id == job_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"job {job_id} not found")
            job = job_from_row(row)
            if job.state.is_terminal:
                raise Conflict(f"job {job.uid} already ended ({job.state}); reports are closed",
                               {"state": str(job.state)})
            job.telemetry = {**job.telemetry, **patch}
            values = {**extra, "telemetry": job.telemetry, "updated_at": now}
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(values))
            for name, value in extra.items():
                setattr(job, name, value)
            if event:
                self.record_event(conn, job, now, event, {**patch, **extra})
            return job

        job = self.engines.write_tx(merge)
        self.on_change((job_id,))
        return job

    def jobs_in_states(self, states: Iterable[JobState], limit: int = 1000) -> list[Job]:
        stmt = (
            sa.select(t.jobs)
            .where(t.jobs.c.state.in_([str(s) for s in states]))
            .order_by(t.jobs.c.priority.desc(), t.jobs.c.created_at, t.jobs.c.id)
            .limit(limit)
        )
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def last_event_id(self, job_id: int) -> int:
        stmt = sa.select(sa.func.max(t.job_events.c.id)).where(t.job_events.c.job_id == job_id)
        with self.engines.read.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def queued(self, limit: int) -> list[QueuedJob]:
        c = t.jobs.c
        stmt = (
            sa.select(c.id, c.gpus, c.cpus, c.memory_mb, c.priority, c.next_retry_at,
                      c.cluster_id)
            .where(c.state == str(JobState.QUEUED))
            .order_by(c.priority.desc(), c.created_at, c.id)
            .limit(limit)
        )
        with self.engines.read.connect() as conn:
            return [
                QueuedJob(r.id, Resources(r.gpus, r.cpus, r.memory_mb), r.priority,
                          r.next_retry_at, r.cluster_id)
                for r in conn.execute(stmt)
            ]

    def events(self, job_id: int, after_id: int = 0, limit: int = 500) -> list[JobEvent]:
        stmt = (
            sa.select(t.job_events)
            .where(t.job_events.c.job_id == job_id, t.job_events.c.id > after_id)
            .order_by(t.job_events.c.id)
            .limit(limit)
        )
        with self.engines.read.connect() as conn:
            return [event_from_row(r) for r in conn.execute(stmt)]

    def queue_position(self, job: Job) -> int:
        c = t.jobs.c
        ahead = sa.or_(
            c.priority > job.priority,
            sa.and_(c.priority == job.priority, c.created_at < job.created_at),
            sa.and_(c.priority == job.priority, c.created_at == job.created_at, c.id < job.id),
        )
        stmt = sa.select(sa.func.count()).where(c.state == str(JobState.QUEUED), ahead)
        with self.engines.read.connect() as conn:
            return int(conn.execute(stmt).scalar_one()) + 1

    def finished_since(self, since: float) -> int:
        stmt = sa.select(sa.func.count()).where(t.jobs.c.finished_at >= since)
        with self.engines.read.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_by_state(self) -> dict[str, int]:
        stmt = sa.select(t.jobs.c.state, sa.func.count()).group_by(t.jobs.c.state)
        with self.engines.read.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(stmt)}

    # progress reports (jobyard.core.progress) -------------------------------------------
    def update_telemetry(
        self,
        ref: int | str,
        change: Callable[[Job], TelemetryChange | None],
    ) -> tuple[Job, TelemetryChange | None]:
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
                self.record_event(conn, job, now, event[0], event[1])
            return job, result

        job, result = self.engines.write_tx(update)
        if result is not None and result[2] is not None:
            self.on_change((job.id,))
        return job, result

    def state_events(self, job_id: int) -> list[tuple[float, dict[str, Any]]]:
        c = t.job_events.c
        stmt = (sa.select(c.ts, c.data).where(c.job_id == job_id, c.kind == "state")
                .order_by(c.id))
        with self.engines.read.connect() as conn:
            return [(r.ts, r.data) for r in conn.execute(stmt)]

    def jobs_on_cluster(self, uid: str, states: list[str]) -> list[Job]:
        stmt = sa.select(t.jobs).where(t.jobs.c.cluster_id == uid, t.jobs.c.state.in_(states))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def job_is_live(self, job_id: int | None) -> bool:
        if job_id is None:
            return False
        with self.engines.read.connect() as conn:
            state = conn.execute(sa.select(_J.c.state).where(_J.c.id == job_id)).scalar()
        return state in _LIVE

    def job_page(self, org_id: int, offset: int, limit: int,
                 states: Collection[str] | None = None) -> tuple[list[Job], int]:
        where = [_J.c.org_id == org_id]
        if states is not None:
            where.append(_J.c.state.in_(list(states)))
        with self.engines.read.connect() as conn:
            jobs = [job_from_row(r) for r in conn.execute(
                sa.select(_J).where(*where).order_by(_J.c.id.desc()).offset(offset)
                .limit(limit))]
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_J)
                                     .where(*where)).scalar_one())
        return jobs, total

    def job_facts(self, jobs: Collection[Job]) -> dict[str, Any]:
        outputs: dict[int, list[dict[str, Any]]] = {j.id: [] for j in jobs}
        clusters: dict[str, dict[str, Any]] = {}
        if not jobs:
            return {"outputs": outputs, "clusters": clusters, "users": {}}
        o = t.job_outputs.c
        attempts = {j.id: j.attempt for j in jobs}
        uids = sorted({j.cluster_id for j in jobs if j.cluster_id})
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.job_outputs).where(o.job_id.in_(list(attempts)))
                                .order_by(o.job_id, o.name))
            for r in rows:
                if r.attempt == attempts[r.job_id]:
                    outputs[r.job_id].append(
                        {"id": r.id, "name": r.name, "size": r.size, "records": r.records,
                         "partial": bool(r.partial), "created_at": r.created_at})
            if uids:
                for r in conn.execute(sa.select(_C.c.uid, _C.c.id, _C.c.name)
                                      .where(_C.c.uid.in_(uids))):
                    clusters[r.uid] = {"id": r.id, "name": r.name}
            users = usernames_in(conn, (j.user_id for j in jobs))
        return {"outputs": outputs, "clusters": clusters, "users": users}

    def ended_before(self, cutoff: float, limit: int) -> list[Job]:
        c = t.jobs.c
        stmt = (sa.select(t.jobs).where(c.finished_at < cutoff,
                                        c.state.in_([str(s) for s in TERMINAL]))
                .order_by(c.finished_at).limit(limit))
        with self.engines.read.connect() as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def workdirs_in_use(self, paths: list[str]) -> set[str]:
        if not paths:
            return set()
        with self.engines.read.connect() as conn:
            return set(conn.execute(sa.select(t.jobs.c.workdir).where(
                t.jobs.c.workdir.in_(paths))).scalars())

    def delete_jobs(self, job_ids: list[int]) -> list[int]:
        if not job_ids:
            return []
        terminal = [str(s) for s in TERMINAL]

        def write(conn: sa.Connection) -> list[int]:
            ids: list[int] = list(conn.execute(sa.select(t.jobs.c.id).where(
                t.jobs.c.id.in_(job_ids), t.jobs.c.state.in_(terminal))).scalars())
            if not ids:
                return []
            for table in _CHILDREN:
                conn.execute(sa.delete(table).where(table.c.job_id.in_(ids)))
            conn.execute(sa.update(t.webhook_deliveries)
                         .where(t.webhook_deliveries.c.job_id.in_(ids)).values(job_id=None))
            conn.execute(sa.delete(t.jobs).where(t.jobs.c.id.in_(ids)))
            return ids

        return self.engines.write_tx(write)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not writable through the store: {sorted(unknown)}")
    return dict(fields)
