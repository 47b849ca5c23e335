"""Use-cases: what any API dialect may ask of the core. Intent only; the daemon acts on it."""

from __future__ import annotations

import builtins
import shlex
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jobyard import ids
from jobyard.core.files import ChangeFeed, JobFiles
from jobyard.core.inputs import ListJobs, SubmitJob
from jobyard.core.models import Job, JobEvent, Principal, Resources
from jobyard.core.ports import EventFeed, JobStore, KvStore, NewJob, Transition, WebhookStore
from jobyard.core.states import ACTIVE, JobState, Substate
from jobyard.errors import Conflict, Forbidden, JobNotFound, Unschedulable, ValidationFailed

SCHEDULER_SNAPSHOT = "scheduler"  # kv key the daemon writes its free/capacity view to


# Checks a job for a cluster (raises to refuse); returns the name the job records of it.
ClusterCheck = Callable[[Principal, str, Resources], str]


@dataclass(frozen=True)
class Limits:
    max_command_chars: int = 65536
    max_env_vars: int = 256
    max_env_bytes: int = 65536


class JobService:
    """Submit, read, follow, cancel, pause, resume and delete jobs on behalf of a principal.

    The native API answers 404 alike for an unknown job and one outside the caller's org
    (:meth:`get`); dialects that must tell them apart (403) use :meth:`find`.
    """

    def __init__(
        self,
        jobs: JobStore,
        kv: KvStore,
        capacity: Resources,
        limits: Limits = Limits(),
        clock: Callable[[], float] = time.time,
        on_intent: Callable[[str], None] = lambda _kind: None,
        check_webhook: Callable[[str], str | None] | None = None,
        check_cluster: ClusterCheck | None = None,
        files: JobFiles | None = None,
        events: EventFeed | None = None,
        changes: ChangeFeed | None = None,
        deliveries: WebhookStore | None = None,
        instance_types: Collection[str] | None = None,
    ):
        self._jobs = jobs
        self._kv = kv
        self.capacity = capacity
        self.limits = limits
        self.clock = clock
        # Called with "submit", "cancel", "pause" or "resume" once that intent is committed: the
        # daemon acts on it.
        self._on_intent = on_intent
        # Why a webhook URL is refused (scheme, private ranges per config), or None.
        self.check_webhook = check_webhook or _webhook_scheme
        # Checks a job for a cluster (raises to refuse) and returns the cluster's name, which
        # the job records (``ClusterService.check_job``); only called for jobs that name one.
        self._check_cluster = check_cluster
        self._files = files
        self._events = events
        self._changes = changes
        self._deliveries = deliveries
        # The instance types a job may name (the cluster catalog's and the priced ones);
        # None: any.
        self.instance_types = None if instance_types is None else frozenset(instance_types)

    # submit ----------------------------------------------------------------------------------
    def submit(
        self, who: Principal, cmd: SubmitJob, idempotency: tuple[str, str] | None = None
    ) -> tuple[Job, bool]:
        """Queue a job; returns ``(job, created)`` (``created`` is False for a replay)."""
        self._validate(cmd)
        cluster_name = None
        if cmd.cluster_id is not None:
            if self._check_cluster is None:
                raise Unschedulable("this server runs no clusters", {})
            cluster_name = self._check_cluster(who, cmd.cluster_id, cmd.resources)
        now = self.clock()
        job = Job(
            id=0,
            uid=ids.job_uid(),
            user_id=who.user_id,
            org_id=who.org_id,
            name=cmd.name or _default_name(cmd.command),
            command=cmd.command,
            env=dict(cmd.env),
            workdir=cmd.workdir,
            workspace_replica=cmd.workspace_replica,
            resources=cmd.resources,
            instance_type=cmd.instance_type,
            priority=cmd.priority,
            time_limit_s=cmd.time_limit_s,
            retry=cmd.retry,
            tags=list(dict.fromkeys(cmd.tags)),
            state=JobState.QUEUED,
            substate=str(Substate.WAITING_RESOURCES),
            created_at=now,
            webhook=dict(cmd.webhook) if cmd.webhook else None,
            cluster_id=cmd.cluster_id,
            cluster_name=cluster_name,
            teardown_cluster=cmd.teardown_cluster,
            output_patterns=list(cmd.outputs),
            dialect=dict(cmd.dialect),
        )
        job, created = self._jobs.create_job(NewJob(job, idempotency))
        if created:
            self._on_intent("submit")
        return job, created

    def _validate(self, cmd: SubmitJob) -> None:
        lim = self.limits
        size = len(cmd.command) if isinstance(cmd.command, str) else sum(map(len, cmd.command))
        if not cmd.command or (isinstance(cmd.command, list) and not cmd.command[0]):
            _invalid(("command",), "command must not be empty")
        if size > lim.max_command_chars:
            _invalid(("command",), f"command is longer than {lim.max_command_chars} characters")
        if len(cmd.env) > lim.max_env_vars:
            _invalid(("env",), f"env has more than {lim.max_env_vars} variables")
        env_bytes = sum(len(k) + len(v) + 2 for k, v in cmd.env.items())
        if env_bytes > lim.max_env_bytes:
            _invalid(("env",), f"env is larger than {lim.max_env_bytes} bytes")
        if (cmd.instance_type is not None and self.instance_types is not None
                and cmd.instance_type not in self.instance_types):
            known = ", ".join(sorted(self.instance_types)) or "none"
            _invalid(("instance_type",), f"unknown instance_type '{cmd.instance_type}'; "
                     f"known: {known}")
        for key in cmd.env:
            if not key or "=" in key or "\0" in key or key.startswith("JOBYARD_"):
                _invalid(("env", key), "env names must be non-empty, without '=' and not JOBYARD_*")
        for n, pattern in enumerate(cmd.outputs):
            problem = output_pattern_problem(pattern)
            if problem:
                _invalid(("outputs", str(n)), problem)
        if cmd.webhook is not None:
            problem = self.check_webhook(str(cmd.webhook.get("url") or ""))
            if problem:
                _invalid(("webhook", "url"), problem)
        want, cap = cmd.resources, self.capacity
        if not want.fits_in(cap):
            short = {
                name: {"requested": getattr(want, name), "capacity": getattr(cap, name)}
                for name in ("gpus", "cpus", "memory_mb")
                if getattr(want, name) > getattr(cap, name)
            }
            names = ", ".join(f"{v['requested']} {k} (capacity {v['capacity']})"
                              for k, v in short.items())
            raise Unschedulable(
                f"this server can never run the job: it asks for {names}", {"resources": short}
            )

    # read ------------------------------------------------------------------------------------
    def get(self, who: Principal, ref: int | str) -> Job:
        """The job, if the caller may see it; 404 alike for unknown and other orgs' jobs."""
        job = self._jobs.get_job(ref)
        if job is None or not who.sees(job.org_id):
            raise JobNotFound(f"job {ref} not found")
        return job

    def find(self, who: Principal, ref: int | str) -> Job:
        """The job: 404 when there is none, 403 when it is another org's."""
        job = self._jobs.get_job(ref)
        if job is None:
            raise JobNotFound(f"job {ref} not found", {"job_id": str(ref)})
        if not who.sees(job.org_id):
            raise Forbidden(f"job {ref} belongs to another organization", {"job_id": str(ref)})
        return job

    def get_in_org(self, who: Principal, ref: int | str) -> Job:
        """The job if it is of the caller's own org (an admin too: an Integrate.io account is
        one org); 404 otherwise."""
        job = self._jobs.get_job(ref)
        if job is None or job.org_id != who.org_id:
            raise JobNotFound(f"job {ref} not found")
        return job

    def refresh(self, job: Job) -> Job | None:
        """A job the caller already holds, as it is now (None once it was deleted)."""
        return self._jobs.get_job(job.id)

    def state_of(self, ref: int | str) -> JobState | None:
        """A job's state now, whoever owns it (None once it is gone)."""
        job = self._jobs.get_job(ref)
        return job.state if job is not None else None

    def list(self, who: Principal, query: ListJobs, own_org: bool = False) -> list[Job]:
        """Jobs the caller may see, newest first (an admin's: every org's, unless
        ``own_org``)."""
        if query.state and query.state not in JobState.__members__.values():
            _invalid(("query", "state"), f"unknown state '{query.state}'")
        org_id = None if who.is_admin and not own_org else who.org_id
        return self._jobs.list_jobs(org_id, query)

    def page(self, who: Principal, offset: int, limit: int,
             states: Collection[str] | None = None) -> tuple[builtins.list[Job], int]:
        """A page of the caller's org's jobs (in ``states``), newest first, and how many
        match."""
        return self._jobs.job_page(who.org_id, offset, limit, states)

    def facts(self, jobs: Collection[Job]) -> dict[str, Any]:
        """What showing ``jobs`` needs beyond their rows: current outputs, cluster ids and
        names, owners' usernames (see ``JobStore.job_facts``)."""
        return self._jobs.job_facts(jobs)

    def on_cluster(self, cluster_uid: str, states: Collection[str]) -> builtins.list[Job]:
        """The jobs of a cluster (the caller checked it may see it) in ``states``."""
        return self._jobs.jobs_on_cluster(cluster_uid, list(states))

    def view(self, who: Principal, ref: int | str) -> tuple[Job, dict[str, Any] | None]:
        """The job and, while it is queued, why it waits (:meth:`waiting`)."""
        job = self.get(who, ref)
        return job, self.waiting(job) if job.state is JobState.QUEUED else None

    def waiting(self, job: Job) -> dict[str, Any] | None:
        """Why a queued job waits, as data: what it needs, its place, an estimated start."""
        if job.state is not JobState.QUEUED:
            return None
        now = self.clock()
        position = self._jobs.queue_position(job)
        info: dict[str, Any] = {"position": position}
        if job.next_retry_at and job.next_retry_at > now:
            info["reason"] = "retry_backoff"
            info["estimated_start"] = job.next_retry_at
            return info
        if job.cluster_id is not None:  # its resources are the cluster's, not the free ones
            info["reason"] = "cluster_instance"
            info["waiting_for"] = {"cluster": {
                "id": job.cluster_id, "message": "a free instance of the cluster"}}
            return info
        snapshot = self._kv.get_kv(SCHEDULER_SNAPSHOT) or {}
        free = snapshot.get("free")
        if free is not None:
            need = {
                name: {"requested": getattr(job.resources, name), "free": free.get(name, 0)}
                for name in ("gpus", "cpus", "memory_mb")
                if getattr(job.resources, name) > free.get(name, 0)
            }
            info["reason"] = "resources" if need else "queue"
            info["waiting_for"] = need
        window = 600.0
        done = self._jobs.finished_since(now - window)
        if done:
            info["estimated_start"] = now + position / (done / window)
        return info

    # cancel ----------------------------------------------------------------------------------
    def cancel(self, who: Principal, ref: int | str) -> tuple[Job, bool]:
        """Record the intent to cancel. Returns ``(job, changed)``; repeat cancels are no-ops.

        A queued job (also one waiting for a retry) has no process: it becomes ``canceled`` at
        once. An active one becomes ``canceling`` and the daemon stops its processes.
        """
        job = self.get(who, ref)
        if job.state in (JobState.CANCELED, JobState.CANCELING):
            return job, False
        if job.state.is_terminal:
            raise Conflict(
                f"job {job.uid} already ended ({job.state}); only a running or queued job can be"
                " canceled",
                {"state": str(job.state)},
            )
        [result] = self._jobs.apply([cancel_transition(job, self.clock(), who.username)])
        if isinstance(result, Exception):
            # The daemon moved it meanwhile (e.g. it just ended); answer from the fresh state.
            fresh = self.get(who, job.id)
            if fresh.state in (JobState.CANCELED, JobState.CANCELING):
                return fresh, False
            if fresh.state in ACTIVE or fresh.state is JobState.QUEUED:
                return self.cancel(who, job.id)
            raise Conflict(f"job {job.uid} already ended ({fresh.state})",
                           {"state": str(fresh.state)})
        self._on_intent("cancel")
        return result, True

    # pause and resume ------------------------------------------------------------------------
    def pause(self, who: Principal, ref: int | str) -> tuple[Job, bool]:
        """Record the intent to pause a running job. Returns ``(job, changed)``; pausing a
        paused job is a no-op. The daemon then stops its processes (they keep their resources,
        and cost keeps accruing); its time limit does not run while it is paused."""
        return self._move(who, ref, JobState.RUNNING, JobState.PAUSED, "paused")

    def resume(self, who: Principal, ref: int | str) -> tuple[Job, bool]:
        """Record the intent to resume a paused job. Returns ``(job, changed)``; resuming a
        running job is a no-op. The daemon then continues its processes and its time limit."""
        return self._move(who, ref, JobState.PAUSED, JobState.RUNNING, "resumed")

    def _move(self, who: Principal, ref: int | str, source: JobState, target: JobState,
              verb: str, retried: bool = False) -> tuple[Job, bool]:
        job = self.get(who, ref)
        if job.state is target:
            return job, False
        if job.state is not source:
            raise Conflict(
                f"job {job.uid} is {job.state}; only a {source} job can be {verb}",
                {"state": str(job.state)},
            )
        now = self.clock()
        if target is JobState.PAUSED:
            transition = pause_transition(job, now, who.username)
        else:
            transition = resume_transition(job, now, who.username)
        [result] = self._jobs.apply([transition])
        if isinstance(result, Exception):
            if retried:
                raise result
            # It moved meanwhile (ended, canceled, or another caller got there first).
            return self._move(who, job.id, source, target, verb, retried=True)
        self._on_intent("pause" if target is JobState.PAUSED else "resume")
        return result, True


    # delete ----------------------------------------------------------------------------------
    def delete(self, who: Principal, ref: int | str) -> Job:
        """Forget a finished job for good: its rows, then its logs, outputs and workspace.
        Refused (409) while it is not terminal. Every API's delete goes through here."""
        job = self.get(who, ref)
        if not job.is_terminal or not self._jobs.delete_jobs([job.id]):
            state = job.state if not job.is_terminal else self.get(who, job.id).state
            raise Conflict(f"job {job.uid} is {state}; only a finished job can be deleted",
                           {"state": str(state)})
        if self._files is not None:
            self._files.remove(job)
        return job

    # events and changes ----------------------------------------------------------------------
    def follow_events(self, job: Job, after: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events after ``after``, then each new one, until it has ended."""
        assert self._events is not None, "this service was built without an event feed"
        return self._events.follow(job.id, after)

    def last_event_id(self, job: Job) -> int:
        return self._jobs.last_event_id(job.id)

    def events(self, job: Job, limit: int = 500) -> builtins.list[JobEvent]:
        """The job's first ``limit`` events (its states, reports, ...), oldest first."""
        return self._jobs.events(job.id, 0, limit)

    def state_events(self, job: Job) -> builtins.list[tuple[float, dict[str, Any]]]:
        """``(ts, data)`` of the job's state changes, in order."""
        return self._jobs.state_events(job.id)

    async def wait_changed(self, job: Job, timeout: float) -> Job | None:
        """The job once it changed, or as it is after ``timeout`` (None once it is gone)."""
        assert self._changes is not None, "this service was built without a change feed"
        with self._changes.listen(job.id) as changed:
            fresh = self._jobs.get_job(job.id)
            if fresh is None or fresh.updated_at != job.updated_at or timeout <= 0:
                return fresh
            await changed.wait(timeout)
        return self._jobs.get_job(job.id)

    def deliveries(self, job: Job) -> builtins.list[dict[str, Any]]:
        """The job's webhook deliveries and their attempts, oldest first."""
        assert self._deliveries is not None, "this service was built without webhooks"
        return self._deliveries.job_deliveries(job.id)


def cancel_transition(job: Job, now: float, by: str) -> Transition:
    """The one cancel rule: a queued job (no process) ends ``canceled`` at once, an active one
    becomes ``canceling`` and the daemon stops it (its substate becomes ``stopping`` when the
    daemon sends the stop: until then the stop is only requested)."""
    target = JobState.CANCELED if job.state is JobState.QUEUED else JobState.CANCELING
    fields: dict[str, Any] = {"cancel_requested_at": now, "substate": None}
    if target is JobState.CANCELED:
        fields["message"] = "canceled before it started"
    return Transition(job.id, target, fields, {"by": by})


def pause_transition(job: Job, now: float, by: str) -> Transition:
    """A running job becomes ``paused`` (the daemon then stops its processes); the pause is
    timed from now."""
    return Transition(job.id, JobState.PAUSED, {"paused_at": now}, {"by": by})


def resume_transition(job: Job, now: float, by: str) -> Transition:
    """A paused job becomes ``running`` again (the daemon continues it); the pause just ended
    is added to ``paused_s``, which the daemon adds to the time limit."""
    paused = max(0.0, now - job.paused_at) if job.paused_at is not None else 0.0
    fields = {"paused_at": None, "paused_s": job.paused_s + paused}
    return Transition(job.id, JobState.RUNNING, fields, {"by": by, "paused_s": round(paused, 3)})


def output_pattern_problem(pattern: str) -> str | None:
    """Why an output pattern is refused: it must stay inside the working directory."""
    if not pattern or len(pattern) > 1024 or "\0" in pattern:
        return "an output pattern must be 1 to 1024 characters"
    if pattern.startswith(("/", "\\")) or ".." in pattern.replace("\\", "/").split("/"):
        return f"output pattern '{pattern}' must be relative to the working directory, without '..'"
    return None


def _default_name(command: str | list[str]) -> str:
    try:
        argv = shlex.split(command) if isinstance(command, str) else command
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        argv = command.split() if isinstance(command, str) else command
    first = argv[0] if argv else "job"
    return first.rsplit("/", 1)[-1][:200] or "job"


def _webhook_scheme(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "the webhook URL must be an http:// or https:// URL"
    return None


def _invalid(loc: tuple[str, ...], msg: str) -> None:
    raise ValidationFailed(msg, {"loc": ["body", *loc], "type": "value_error"})
