"""The SQL store (SQLite or PostgreSQL) behind :class:`jobyard.core.ports.Store`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, JobEvent, Principal, Resources
from jobyard.core.ports import NewJob, QueuedJob, Store, Transition
from jobyard.core.states import JobState, check_transition
from jobyard.errors import Conflict, JobyardError, NotFound, ValidationFailed
from jobyard.store import tables as t
from jobyard.store.clusters import ClusterStore
from jobyard.store.endpoints import EndpointStore
from jobyard.store.engine import Engines, Prepared
from jobyard.store.operations import OperationStore
from jobyard.store.outputs import OutputsStore
from jobyard.store.packages import PackageStore
from jobyard.store.purge import PurgeStore
from jobyard.store.rows import WRITABLE, event_from_row, job_from_row, job_to_row
from jobyard.store.sshkeys import SshKeyStore
from jobyard.store.telemetry import TelemetryStore
from jobyard.store.webhooks import WebhookStore


class SqlBase:
    """What every part of the SQL store shares: engines, clock, change hook, event writer."""

    def __init__(
        self,
        engines: Engines,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[Iterable[int]], None] | None = None,
    ):
        self.engines = engines
        self.clock = clock
        # Told which jobs changed, after the commit (wakes the daemon and SSE streams).
        self.on_change = on_change or (lambda _ids: None)
        self._job_by_id = Prepared(engines.read, _JOB_BY_ID)
        self._job_by_uid = Prepared(engines.read, _JOB_BY_UID)
        self._principal_by_key = Prepared(engines.read, _PRINCIPAL_BY_KEY)

    def _record_event(
        self, conn: sa.Connection, job: Job, ts: float, kind: str, data: dict[str, Any]
    ) -> int:
        """Write one job_events row; the place later layers hook into (e.g. the outbox)."""
        return conn.execute(
            _INSERT_EVENT,
            {"job_id": job.id, "ts": ts, "kind": kind, "state": str(job.state), "data": data},
        ).inserted_primary_key[0]


class SqlStore(
    ClusterStore, OperationStore, WebhookStore, TelemetryStore, OutputsStore, PurgeStore,
    SshKeyStore, EndpointStore, PackageStore, SqlBase, Store,
):
    """The store: jobs and principals here; telemetry and webhooks in their own modules."""

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
            job.id = conn.execute(_INSERT_JOB, job_to_row(job)).inserted_primary_key[0]
            if job.tags:
                conn.execute(
                    sa.insert(t.job_tags), [{"job_id": job.id, "tag": tag} for tag in set(job.tags)]
                )
            self._record_event(
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
        self._record_event(conn, job, now, "state", data)
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
                self._record_event(conn, job, now, event, dict(fields))
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
                self._record_event(conn, job, now, event, {**patch, **extra})
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
            return {state: n for state, n in conn.execute(stmt)}

    # principals ------------------------------------------------------------------------------
    def principal_for_key(self, key_hash: str) -> Principal | None:
        row = self._principal_by_key.one(key_hash=key_hash)
        if row is None:
            return None
        return Principal(row.user_id, row.org_id, row.username, bool(row.is_admin), row.key_id)

    def create_org(self, name: str) -> dict[str, Any]:
        now = self.clock()

        def insert(conn: sa.Connection) -> int:
            if conn.execute(sa.select(t.orgs.c.id).where(t.orgs.c.name == name)).first():
                raise Conflict(f"org '{name}' already exists")
            return conn.execute(
                sa.insert(t.orgs).values(name=name, created_at=now)
            ).inserted_primary_key[0]

        return {"id": self.engines.write_tx(insert), "name": name, "created_at": now}

    def create_user(self, username: str, org: str, is_admin: bool = False) -> dict[str, Any]:
        now = self.clock()

        def insert(conn: sa.Connection) -> tuple[int, int]:
            if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).first():
                raise Conflict(f"user '{username}' already exists")
            org_row = conn.execute(sa.select(t.orgs).where(t.orgs.c.name == org)).first()
            if org_row is None:
                raise ValidationFailed(f"org '{org}' does not exist", {"org": org})
            user_id = conn.execute(
                sa.insert(t.users).values(
                    org_id=org_row.id, username=username, is_admin=is_admin, created_at=now
                )
            ).inserted_primary_key[0]
            return user_id, org_row.id

        user_id, org_id = self.engines.write_tx(insert)
        return {
            "id": user_id, "username": username, "org": org, "org_id": org_id,
            "is_admin": is_admin, "created_at": now,
        }

    def create_key(self, user_id: int, key_hash: str, prefix: str, name: str) -> dict[str, Any]:
        now = self.clock()
        stmt = sa.insert(t.api_keys).values(
            user_id=user_id, key_hash=key_hash, prefix=prefix, name=name, created_at=now
        )
        key_id = self.engines.write_tx(lambda conn: conn.execute(stmt).inserted_primary_key[0])
        return {"id": key_id, "user_id": user_id, "prefix": prefix, "name": name,
                "created_at": now, "revoked_at": None}

    def revoke_key(self, key_id: int) -> dict[str, Any] | None:
        now = self.clock()

        def revoke(conn: sa.Connection) -> dict[str, Any] | None:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
            if row is None:
                return None
            revoked_at = row.revoked_at or now
            conn.execute(
                sa.update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=revoked_at)
            )
            return {**_key_dict(row), "revoked_at": revoked_at}

        return self.engines.write_tx(revoke)

    def list_keys(self, user_id: int | None) -> list[dict[str, Any]]:
        stmt = sa.select(t.api_keys).order_by(t.api_keys.c.id)
        if user_id is not None:
            stmt = stmt.where(t.api_keys.c.user_id == user_id)
        with self.engines.read.connect() as conn:
            return [_key_dict(r) for r in conn.execute(stmt)]

    def list_users(self) -> list[dict[str, Any]]:
        stmt = sa.select(t.users, t.orgs.c.name.label("org")).join(t.orgs).order_by(t.users.c.id)
        with self.engines.read.connect() as conn:
            return [_user_dict(r) for r in conn.execute(stmt)]

    def find_user(self, username: str) -> dict[str, Any] | None:
        stmt = (
            sa.select(t.users, t.orgs.c.name.label("org"))
            .join(t.orgs)
            .where(t.users.c.username == username)
        )
        with self.engines.read.connect() as conn:
            row = conn.execute(stmt).first()
        return _user_dict(row) if row else None

    def list_orgs(self) -> list[dict[str, Any]]:
        with self.engines.read.connect() as conn:
            rows = conn.execute(sa.select(t.orgs).order_by(t.orgs.c.id))
            return [{"id": r.id, "name": r.name, "created_at": r.created_at} for r in rows]

    def is_empty(self) -> bool:
        with self.engines.read.connect() as conn:
            return conn.execute(sa.select(t.users.c.id).limit(1)).first() is None

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


# Hot statements, built once (each costs more to build than to run).
_INSERT_JOB = sa.insert(t.jobs)
_INSERT_EVENT = sa.insert(t.job_events)
_JOB_BY_ID = sa.select(t.jobs).where(t.jobs.c.id == sa.bindparam("ref"))
_JOB_FOR_UPDATE = _JOB_BY_ID.with_for_update()
# The SET clause comes from the parameters given (SQLAlchemy caches one form per column set).
_UPDATE_JOB = sa.update(t.jobs).where(t.jobs.c.id == sa.bindparam("ref"))
_JOB_BY_UID = sa.select(t.jobs).where(t.jobs.c.uid == sa.bindparam("ref"))
_PRINCIPAL_BY_KEY = (
    sa.select(
        t.api_keys.c.id.label("key_id"),
        t.users.c.id.label("user_id"),
        t.users.c.org_id,
        t.users.c.username,
        t.users.c.is_admin,
    )
    .join(t.users, t.users.c.id == t.api_keys.c.user_id)
    .where(t.api_keys.c.key_hash == sa.bindparam("key_hash"), t.api_keys.c.revoked_at.is_(None))
)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not writable through the store: {sorted(unknown)}")
    return dict(fields)


def _key_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "prefix": r.prefix, "name": r.name,
            "created_at": r.created_at, "revoked_at": r.revoked_at}


def _user_dict(r: Any) -> dict[str, Any]:
    return {"id": r.id, "username": r.username, "org": r.org, "org_id": r.org_id,
            "is_admin": bool(r.is_admin), "created_at": r.created_at}
