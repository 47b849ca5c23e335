"""An in-memory store: the core's ports for jobs, accounts, webhooks settings, endpoints,
telemetry reads and kv, in plain dicts, for tests of the services' rules without a database.

It keeps the SQL store's contracts where the core relies on them: every move is checked
against the transition table and recorded as an event, reads return copies (a caller's
change to a job never reaches the store), ids count from 1. It does not do what only
the daemon, the operation processor or a second process need (clusters, volumes, operations,
packages, metric samples, the webhook outbox): use :class:`~jobyard.store.sql.SqlStore`
(on a SQLite file) for those.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobyard.core import webhooks as wh
from jobyard.core.endpoints import Endpoint
from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, JobEvent, Principal, Resources
from jobyard.core.ports import NewJob, QueuedJob, TelemetryChange, Transition
from jobyard.core.states import ACTIVE, TERMINAL, JobState, check_transition
from jobyard.errors import Conflict, JobyardError, NotFound, ValidationFailed

_LIVE = {JobState.QUEUED, *ACTIVE}


@dataclass
class _Tables:
    """Everything the repositories share (one "database")."""

    clock: Callable[[], float]
    jobs: dict[int, Job] = field(default_factory=dict)
    events: list[JobEvent] = field(default_factory=list)
    idempotency: dict[tuple[int, str], tuple[str, int]] = field(default_factory=dict)
    orgs: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: dict[int, dict[str, Any]] = field(default_factory=dict)
    ssh_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    kv: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    next_id: int = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def event(self, job: Job, ts: float, kind: str, data: dict[str, Any]) -> None:
        self.events.append(JobEvent(self.new_id(), job.id, ts, kind, str(job.state), data))


class MemoryJobs:
    def __init__(self, t: _Tables):
        self._t = t

    def create_job(self, new: NewJob) -> tuple[Job, bool]:
        job = copy.deepcopy(new.job)
        if new.idempotency:
            key, fingerprint = new.idempotency
            prior = self._t.idempotency.get((job.user_id, key))
            if prior is not None:
                if prior[0] != fingerprint:
                    raise Conflict("this Idempotency-Key was already used with a different "
                                   "request", {"idempotency_key": key})
                return copy.deepcopy(self._t.jobs[prior[1]]), False
        job.id = self._t.new_id()
        job.updated_at = job.created_at
        self._t.jobs[job.id] = job
        self._t.event(job, job.created_at, "state",
                      {"from": None, "to": str(job.state), "attempt": job.attempt})
        if new.idempotency:
            self._t.idempotency[(job.user_id, new.idempotency[0])] = (new.idempotency[1],
                                                                      job.id)
        return copy.deepcopy(job), True

    def get_job(self, ref: int | str) -> Job | None:
        job = self._find(ref)
        return copy.deepcopy(job) if job else None

    def _find(self, ref: int | str) -> Job | None:
        if isinstance(ref, int):
            return self._t.jobs.get(ref)
        return next((j for j in self._t.jobs.values() if j.uid == ref), None)

    def list_jobs(self, org_id: int | None, query: ListJobs) -> list[Job]:
        found = [j for j in sorted(self._t.jobs.values(), key=lambda j: -j.id)
                 if (org_id is None or j.org_id == org_id)
                 and (not query.state or str(j.state) == query.state)
                 and (query.user_id is None or j.user_id == query.user_id)
                 and (not query.name or j.name == query.name)
                 and (not query.before_id or j.id < query.before_id)
                 and (query.gpus is None or j.resources.gpus == query.gpus)
                 and (query.created_after is None or j.created_at >= query.created_after)
                 and (query.created_before is None or j.created_at < query.created_before)
                 and (not query.tag or query.tag in j.tags)]
        return copy.deepcopy(found[:query.limit])

    def apply(self, transitions: Sequence[Transition]) -> list[Job | Exception]:
        now = self._t.clock()
        results: list[Job | Exception] = []
        for tr in transitions:
            try:
                results.append(copy.deepcopy(self._apply_one(tr, now)))
            except JobyardError as exc:
                results.append(exc)
        return results

    def _apply_one(self, tr: Transition, now: float) -> Job:
        job = self._t.jobs.get(tr.job_id)
        if job is None:
            raise NotFound(f"job {tr.job_id} not found")
        check_transition(job.state, tr.to)
        before = job.state
        values = dict(tr.fields)
        if tr.telemetry:
            values["telemetry"] = {**job.telemetry, **tr.telemetry}
        if tr.to is JobState.RUNNING and job.started_at is None:
            values.setdefault("started_at", now)
        if tr.to.is_terminal:
            values.setdefault("finished_at", now)
        for name, value in values.items():
            setattr(job, name, value)
        job.state, job.updated_at = tr.to, now
        data: dict[str, Any] = {"from": str(before), "to": str(tr.to)}
        for name in ("substate", "exit_code", "message", "error", "attempt", "next_retry_at"):
            if values.get(name) is not None:
                data[name] = values[name]
        self._t.event(job, now, "state", {**data, **(tr.event or {})})
        return job

    def update_fields(self, job_id: int, fields: dict[str, Any], event: str | None = None,
                      in_state: JobState | None = None) -> Job | None:
        job = self._t.jobs.get(job_id)
        if job is None or (in_state is not None and job.state is not in_state):
            return None
        for name, value in fields.items():
            setattr(job, name, value)
        job.updated_at = self._t.clock()
        if event:
            self._t.event(job, job.updated_at, event, dict(fields))
        return copy.deepcopy(job)

    def merge_telemetry(self, job_id: int, patch: dict[str, Any], event: str | None = None,
                        fields: dict[str, Any] | None = None) -> Job:
        job = self._t.jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.state.is_terminal:
            raise Conflict(f"job {job.uid} already ended ({job.state}); reports are closed",
                           {"state": str(job.state)})
        job.telemetry = {**job.telemetry, **patch}
        for name, value in (fields or {}).items():
            setattr(job, name, value)
        job.updated_at = self._t.clock()
        if event:
            self._t.event(job, job.updated_at, event, {**patch, **(fields or {})})
        return copy.deepcopy(job)

    def update_telemetry(self, ref: int | str, change: Callable[[Job], TelemetryChange | None]
                         ) -> tuple[Job, TelemetryChange | None]:
        job = self._find(ref)
        if job is None:
            raise NotFound(f"job {ref} not found")
        result = change(copy.deepcopy(job))
        if result is not None:
            patch, fields, event = result
            job.telemetry = {**job.telemetry, **patch}
            for name, value in fields.items():
                setattr(job, name, value)
            job.updated_at = self._t.clock()
            if event is not None:
                self._t.event(job, job.updated_at, event[0], event[1])
        return copy.deepcopy(job), result

    def jobs_in_states(self, states: Iterable[JobState], limit: int = 1000) -> list[Job]:
        wanted = set(states)
        found = sorted((j for j in self._t.jobs.values() if j.state in wanted),
                       key=lambda j: (-j.priority, j.created_at, j.id))
        return copy.deepcopy(found[:limit])

    def queued(self, limit: int) -> list[QueuedJob]:
        return [QueuedJob(j.id, j.resources, j.priority, j.next_retry_at, j.cluster_id)
                for j in self.jobs_in_states([JobState.QUEUED], limit)]

    def queue_position(self, job: Job) -> int:
        def ahead(j: Job) -> bool:
            return (j.priority, -j.created_at, -j.id) > (job.priority, -job.created_at, -job.id)

        return 1 + sum(1 for j in self._t.jobs.values()
                       if j.state is JobState.QUEUED and ahead(j))

    def events(self, job_id: int, after_id: int = 0, limit: int = 500) -> list[JobEvent]:
        return [e for e in self._t.events if e.job_id == job_id and e.id > after_id][:limit]

    def last_event_id(self, job_id: int) -> int:
        return max((e.id for e in self._t.events if e.job_id == job_id), default=0)

    def state_events(self, job_id: int) -> list[tuple[float, dict[str, Any]]]:
        return [(e.ts, e.data) for e in self._t.events if e.job_id == job_id
                and e.kind == "state"]

    def finished_since(self, since: float) -> int:
        return sum(1 for j in self._t.jobs.values()
                   if j.finished_at is not None and j.finished_at >= since)

    def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for j in self._t.jobs.values():
            counts[str(j.state)] = counts.get(str(j.state), 0) + 1
        return counts

    def delete_jobs(self, job_ids: list[int]) -> list[int]:
        gone = [i for i in job_ids if i in self._t.jobs and self._t.jobs[i].state in TERMINAL]
        for i in gone:
            del self._t.jobs[i]
        self._t.events = [e for e in self._t.events if e.job_id not in gone]
        return gone

    def ended_before(self, cutoff: float, limit: int) -> list[Job]:
        found = sorted((j for j in self._t.jobs.values()
                        if j.state in TERMINAL and (j.finished_at or 0) < cutoff),
                       key=lambda j: j.finished_at or 0)
        return copy.deepcopy(found[:limit])

    def workdirs_in_use(self, paths: list[str]) -> set[str]:
        return {j.workdir for j in self._t.jobs.values() if j.workdir and j.workdir in paths}

    def jobs_on_cluster(self, uid: str, states: list[str]) -> list[Job]:
        return copy.deepcopy([j for j in self._t.jobs.values()
                              if j.cluster_id == uid and str(j.state) in states])

    def job_is_live(self, job_id: int | None) -> bool:
        job = self._t.jobs.get(job_id) if job_id is not None else None
        return job is not None and job.state in _LIVE

    def job_page(self, org_id: int, offset: int, limit: int,
                 states: Collection[str] | None = None) -> tuple[list[Job], int]:
        found = [j for j in sorted(self._t.jobs.values(), key=lambda j: -j.id)
                 if j.org_id == org_id and (states is None or str(j.state) in states)]
        return copy.deepcopy(found[offset:offset + limit]), len(found)

    def job_facts(self, jobs: Collection[Job]) -> dict[str, Any]:
        users = {u["id"]: u["username"] for u in self._t.users.values()}
        return {"outputs": {j.id: list(self._t.outputs.get((j.id, j.attempt), [])) for j in jobs},
                "clusters": {}, "users": {j.user_id: users.get(j.user_id) for j in jobs}}


class MemoryAccounts:
    def __init__(self, t: _Tables):
        self._t = t

    def principal_for_key(self, key_hash: str) -> Principal | None:
        key = next((k for k in self._t.keys.values()
                    if k["key_hash"] == key_hash and k["revoked_at"] is None), None)
        if key is None:
            return None
        user = self._t.users[key["user_id"]]
        return Principal(user["id"], user["org_id"], user["username"], user["is_admin"],
                         key["id"])

    def create_org(self, name: str) -> dict[str, Any]:
        if any(o["name"] == name for o in self._t.orgs.values()):
            raise Conflict(f"org '{name}' already exists")
        org: dict[str, Any] = {"id": self._t.new_id(), "name": name, "created_at": self._t.clock(),
               "budget": None, "max_gpus": None}
        self._t.orgs[org["id"]] = org
        return {k: org[k] for k in ("id", "name", "created_at")}

    def create_user(self, username: str, org: str, is_admin: bool = False) -> dict[str, Any]:
        if self.find_user(username) is not None:
            raise Conflict(f"user '{username}' already exists")
        found = next((o for o in self._t.orgs.values() if o["name"] == org), None)
        if found is None:
            raise ValidationFailed(f"org '{org}' does not exist", {"org": org})
        user = {"id": self._t.new_id(), "username": username, "org": org,
                "org_id": found["id"], "is_admin": is_admin, "created_at": self._t.clock(),
                "budget": None}
        self._t.users[user["id"]] = user
        return _public(user, ("budget",))

    def create_key(self, user_id: int, key_hash: str, prefix: str, name: str) -> dict[str, Any]:
        key: dict[str, Any] = {"id": self._t.new_id(), "user_id": user_id, "key_hash": key_hash,
               "prefix": prefix, "name": name, "created_at": self._t.clock(),
               "revoked_at": None}
        self._t.keys[key["id"]] = key
        return _public(key, ("key_hash",))

    def revoke_key(self, key_id: int) -> dict[str, Any] | None:
        key = self._t.keys.get(key_id)
        if key is None:
            return None
        key["revoked_at"] = key["revoked_at"] or self._t.clock()
        return _public(key, ("key_hash",))

    def list_keys(self, user_id: int | None) -> list[dict[str, Any]]:
        return [_public(k, ("key_hash",)) for k in self._t.keys.values()
                if user_id is None or k["user_id"] == user_id]

    def list_users(self) -> list[dict[str, Any]]:
        return [_public(u, ("budget",)) for u in self._t.users.values()]

    def find_user(self, username: str) -> dict[str, Any] | None:
        user = next((u for u in self._t.users.values() if u["username"] == username), None)
        return _public(user, ("budget",)) if user else None

    def list_orgs(self) -> list[dict[str, Any]]:
        return [{k: o[k] for k in ("id", "name", "created_at")} for o in self._t.orgs.values()]

    def is_empty(self) -> bool:
        return not self._t.users

    def org_by_ref(self, ref: str) -> tuple[int, str] | None:
        for o in self._t.orgs.values():
            if o["name"] == ref:
                return o["id"], o["name"]
        if ref.isascii() and ref.isdigit() and int(ref) in self._t.orgs:
            return int(ref), self._t.orgs[int(ref)]["name"]
        return None

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        return {i: self._t.users[i]["username"] for i in set(user_ids) if i in self._t.users}

    def add_ssh_key(self, user_id: int, org_id: int, name: str, key_type: str, public_key: str,
                    fingerprint: str) -> dict[str, Any]:
        for key in self._t.ssh_keys.values():
            if key["user_id"] == user_id and key["fingerprint"] == fingerprint:
                raise Conflict(f"this SSH key is already registered as {key['uid']}",
                               {"key_id": key["uid"]})
        row: dict[str, Any] = {"uid": f"key_{self._t.new_id()}", "user_id": user_id,
               "org_id": org_id,
               "name": name, "key_type": key_type, "public_key": public_key,
               "fingerprint": fingerprint, "created_at": self._t.clock()}
        self._t.ssh_keys[row["uid"]] = row
        return dict(row)

    def list_ssh_keys(self, org_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
        return [{**k, "username": self._t.users[k["user_id"]]["username"]}
                for k in self._t.ssh_keys.values()
                if k["org_id"] == org_id and (user_id is None or k["user_id"] == user_id)]

    def get_ssh_key(self, uid: str) -> dict[str, Any] | None:
        key = self._t.ssh_keys.get(uid)
        return dict(key) if key else None

    def delete_ssh_key(self, uid: str) -> bool:
        return self._t.ssh_keys.pop(uid, None) is not None

    def account_summary(self, user_id: int) -> dict[str, Any]:
        user = self._t.users[user_id]
        jobs: dict[str, int] = {}
        for j in self._t.jobs.values():
            if j.user_id == user_id:
                jobs[str(j.state)] = jobs.get(str(j.state), 0) + 1
        return {"user_id": user_id, "username": user["username"], "org": user["org"],
                "is_admin": user["is_admin"], "created_at": user["created_at"],
                "budget": user["budget"], "org_budget": self._t.orgs[user["org_id"]]["budget"],
                "jobs": jobs, "clusters": 0, "volumes": 0,
                "ssh_keys": sum(1 for k in self._t.ssh_keys.values()
                                if k["user_id"] == user_id)}

    def api_key_info(self, key_id: int) -> dict[str, Any] | None:
        key = self._t.keys.get(key_id)
        return {"name": key["name"], "prefix": key["prefix"]} if key else None

    def _scope(self, scope: str, name: str) -> dict[str, Any] | None:
        if scope == "user":
            return next((u for u in self._t.users.values() if u["username"] == name), None)
        return next((o for o in self._t.orgs.values() if o["name"] == name), None)

    def set_budget(self, scope: str, name: str, budget: float | None) -> dict[str, Any] | None:
        row = self._scope(scope, name)
        if row is None:
            return None
        row["budget"] = budget
        return self.get_budget(scope, name)

    def get_budget(self, scope: str, name: str) -> dict[str, Any] | None:
        row = self._scope(scope, name)
        if row is None:
            return None
        org_id = row["org_id"] if scope == "user" else row["id"]
        return {"id": row["id"], "name": name, "org_id": org_id, "budget": row["budget"]}

    def budgets(self, user_ids: Iterable[int], org_ids: Iterable[int]
                ) -> tuple[dict[int, float], dict[int, float]]:
        users = {i: self._t.users[i]["budget"] for i in set(user_ids)
                 if i in self._t.users and self._t.users[i]["budget"] is not None}
        orgs = {i: self._t.orgs[i]["budget"] for i in set(org_ids)
                if i in self._t.orgs and self._t.orgs[i]["budget"] is not None}
        return users, orgs

    def set_org_max_gpus(self, org: str, max_gpus: int | None) -> None:
        row = self._scope("org", org)
        if row is None:
            raise NotFound(f"org '{org}' not found")
        row["max_gpus"] = max_gpus


class MemoryWebhooks:
    """Users' default webhooks and secrets, and the (never filled) delivery log."""

    def __init__(self, t: _Tables):
        self._t = t

    def user_webhook(self, user_id: int) -> dict[str, Any]:
        return self._update(user_id, lambda current: current)

    def set_user_webhook(self, user_id: int, url: str | None, events: list[str]) -> dict[str, Any]:
        return self._update(user_id, lambda c: {**c, "url": url, "events": events if url else None})

    def rotate_webhook_secret(self, user_id: int) -> dict[str, Any]:
        return self._update(user_id, lambda c: {**c, "secret": wh.new_secret()})

    def _update(self, user_id: int, change: Callable[[dict[str, Any]], dict[str, Any]]
                ) -> dict[str, Any]:
        user = self._t.users[user_id]
        value = change(dict(user.get("webhook") or {}))
        value.setdefault("secret", wh.new_secret())
        value.setdefault("url", None)
        value.setdefault("events", None)
        user["webhook"] = value
        return dict(value)

    def job_deliveries(self, job_id: int, limit: int = 200) -> list[dict[str, Any]]:
        return [d for d in self._t.deliveries if d["job_id"] == job_id][:limit]

    def user_deliveries(self, user_id: int, limit: int = 100) -> list[dict[str, Any]]:
        return [d for d in reversed(self._t.deliveries) if d["user_id"] == user_id][:limit]

    def due_deliveries(self, now: float, limit: int = 100, skip: Collection[int] = ()) -> list[Any]:
        return []

    def record_attempt(self, delivery_id: int, entry: dict[str, Any], delivered: bool,
                       retry_at: float | None) -> None:
        pass

    def purge_deliveries(self, cutoff: float) -> int:
        return 0

    def add_outbox_listener(self, fn: Callable[[], None]) -> None:
        pass


class MemoryTelemetry:
    """Collected outputs and spend; metric samples are not kept."""

    def __init__(self, t: _Tables):
        self._t = t

    def record_outputs(self, job_id: int, attempt: int, files: list[dict[str, Any]]) -> None:
        now = self._t.clock()
        self._t.outputs[(job_id, attempt)] = [
            {**f, "attempt": attempt, "created_at": now} for f in files]

    def list_outputs(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        rows = [r for (j, a), found in sorted(self._t.outputs.items()) if j == job_id
                and (attempt is None or a == attempt) for r in found]
        return sorted(rows, key=lambda r: (r["attempt"], r["name"]))

    def metric_series(self, job_id: int, attempt: int) -> list[tuple[float, dict[str, Any]]]:
        return []

    def settled_spend(self, user_id: int | None = None, org_id: int | None = None) -> float:
        return sum(float((j.telemetry or {}).get("total_cost") or 0.0) for j in self._mine(
            user_id, org_id) if j.state in TERMINAL)

    def unsettled_jobs(self, user_id: int | None = None, org_id: int | None = None) -> list[Job]:
        return copy.deepcopy([j for j in self._mine(user_id, org_id) if j.state not in TERMINAL])

    def _mine(self, user_id: int | None, org_id: int | None) -> list[Job]:
        return [j for j in self._t.jobs.values()
                if (j.user_id == user_id if user_id is not None else j.org_id == org_id)]


class MemoryKv:
    def __init__(self, t: _Tables):
        self._t = t

    def put_kv(self, key: str, value: Any) -> None:
        self._t.kv[key] = copy.deepcopy(value)

    def get_kv(self, key: str) -> Any:
        return copy.deepcopy(self._t.kv.get(key))

    def kv_many(self, keys: Collection[str]) -> dict[str, Any]:
        return {k: copy.deepcopy(self._t.kv[k]) for k in keys if k in self._t.kv}

    def kv_prefixed(self, prefix: str) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self._t.kv.items() if k.startswith(prefix)}


class MemoryEndpoints:
    def __init__(self, t: _Tables):
        self._t = t

    def create_endpoint(self, row: dict[str, Any]) -> Endpoint:
        if row["uid"] in self._t.endpoints:
            raise Conflict(f"endpoint {row['uid']} already exists; pick another name",
                           {"endpoint_id": row["uid"]})
        ep = Endpoint(id=self._t.new_id(), uid=row["uid"], org_id=row["org_id"],
                      user_id=row["user_id"], name=row["name"], command=row["command"],
                      env=dict(row["env"]), resources=Resources(**row["resources"]),
                      time_limit_s=row["time_limit_s"], created_at=row["created_at"],
                      updated_at=row["updated_at"])
        self._t.endpoints[ep.uid] = ep
        return ep

    def get_endpoint(self, uid: str) -> Endpoint | None:
        return self._t.endpoints.get(uid)

    def list_endpoints(self, org_id: int | None, limit: int = 500) -> list[Endpoint]:
        return [e for e in self._t.endpoints.values()
                if org_id is None or e.org_id == org_id][:limit]

    def delete_endpoint(self, uid: str) -> bool:
        return self._t.endpoints.pop(uid, None) is not None


class InMemoryStore:
    """Jobs, accounts, webhook settings, telemetry reads, endpoints and kv in memory."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        t = _Tables(clock)
        self.jobs = MemoryJobs(t)
        self.accounts = MemoryAccounts(t)
        self.webhooks = MemoryWebhooks(t)
        self.telemetry = MemoryTelemetry(t)
        self.kv = MemoryKv(t)
        self.endpoints = MemoryEndpoints(t)


def _public(row: dict[str, Any], hidden: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in hidden and k != "webhook"}
