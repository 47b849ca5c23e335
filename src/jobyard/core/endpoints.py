"""Endpoints: named job templates (TensorOne's ``ep_<name>``) that jobs run against.

An endpoint holds a command, its environment, the resources it needs and a time limit. A run
of an endpoint is an ordinary job made from it, with the run's ``input`` (JSON) handed to the
job through files and environment variables the caller prepares (the API layer writes the
file), its priority, tags, webhook, time limit and retry policy. Endpoints belong to an org:
everyone in it sees and runs them; an admin sees all.

Endpoint ids are ``ep_`` + the name, so a name is unique on the server (across orgs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from jobyard.core.inputs import NewEndpoint, RunEndpoint, SubmitJob
from jobyard.core.jobs import JobService
from jobyard.core.models import Job, Principal, Resources
from jobyard.core.ports import EndpointStore
from jobyard.errors import EndpointNotFound, Unschedulable, ValidationFailed

PREFIX = "ep_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
# Environment names the service sets on a run; an endpoint may not set them itself.
RESERVED_ENV_PREFIXES = ("JOBYARD_", "TENSORONE_")
MAX_LIST = 500


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    uid: str
    org_id: int
    user_id: int
    name: str
    command: str | list[str]
    env: dict[str, str]
    resources: Resources
    time_limit_s: float | None
    created_at: float
    updated_at: float


def endpoint_uid(name: str) -> str:
    return PREFIX + name


class EndpointService:
    """Create, read, delete endpoints and run jobs of them, for a principal."""

    def __init__(self, endpoints: EndpointStore, jobs: JobService,
                 clock: Callable[[], float] | None = None):
        self._endpoints = endpoints
        self.jobs = jobs
        self.clock = clock or jobs.clock

    def create(self, who: Principal, new: NewEndpoint) -> Endpoint:
        """A new endpoint of the caller's org; 409 when its id is taken."""
        self._validate(new)
        now = self.clock()
        return self._endpoints.create_endpoint({
            "uid": endpoint_uid(new.name), "org_id": who.org_id, "user_id": who.user_id,
            "name": new.name, "command": new.command, "env": dict(new.env),
            "resources": {"gpus": new.resources.gpus, "cpus": new.resources.cpus,
                          "memory_mb": new.resources.memory_mb},
            "time_limit_s": new.time_limit_s, "created_at": now, "updated_at": now,
        })

    def get_any(self, uid: str) -> Endpoint:
        """The endpoint whoever owns it (a dialect that answers 403 checks
        :meth:`Principal.sees`)."""
        ep = self._endpoints.get_endpoint(uid)
        if ep is None:
            raise EndpointNotFound(f"endpoint {uid} not found", {"endpoint_id": uid})
        return ep

    def get(self, who: Principal, uid: str) -> Endpoint:
        ep = self._endpoints.get_endpoint(uid)
        if ep is None or not who.sees(ep.org_id):
            raise EndpointNotFound(f"endpoint {uid} not found", {"endpoint_id": uid})
        return ep

    def list(self, who: Principal, limit: int = MAX_LIST) -> list[Endpoint]:
        return self._endpoints.list_endpoints(None if who.is_admin else who.org_id,
                                         min(limit, MAX_LIST))

    def delete(self, who: Principal, uid: str) -> Endpoint:
        """Forget an endpoint. Jobs already run of it keep their endpoint id."""
        ep = self.get(who, uid)
        if not self._endpoints.delete_endpoint(ep.uid):
            raise EndpointNotFound(f"endpoint {uid} not found", {"endpoint_id": uid})
        return ep

    def job_of(self, ep: Endpoint, run: RunEndpoint) -> SubmitJob:
        """The job a run of ``ep`` is: the endpoint's template plus the run's own parts."""
        return SubmitJob(
            command=ep.command,
            name=ep.name,
            env={**ep.env, **run.env},
            workdir=run.workdir,
            workspace_replica=run.workspace_replica,
            resources=ep.resources,
            priority=run.priority,
            time_limit_s=run.time_limit_s if run.time_limit_s is not None else ep.time_limit_s,
            retry=run.retry,
            tags=run.tags,
            webhook=run.webhook,
            outputs=run.outputs,
            dialect=run.dialect,
        )

    def run(self, who: Principal, ep: Endpoint, run: RunEndpoint) -> Job:
        """Queue a job of ``ep`` for ``who`` (who must be able to see it)."""
        if not who.sees(ep.org_id):
            raise EndpointNotFound(f"endpoint {ep.uid} not found", {"endpoint_id": ep.uid})
        job, _ = self.jobs.submit(who, self.job_of(ep, run))
        return job

    def _validate(self, new: NewEndpoint) -> None:
        if not NAME.match(new.name):
            _invalid(("name",), "name: 1-100 of letters, digits, '_' and '-', starting with a "
                     "letter or digit")
        command = new.command
        if not command or (isinstance(command, list) and not command[0]):
            _invalid(("command",), "command must not be empty")
        size = len(command) if isinstance(command, str) else sum(map(len, command))
        if size > self.jobs.limits.max_command_chars:
            _invalid(("command",),
                     f"command is longer than {self.jobs.limits.max_command_chars} characters")
        if len(new.env) > self.jobs.limits.max_env_vars:
            _invalid(("env",), f"env has more than {self.jobs.limits.max_env_vars} variables")
        for key in new.env:
            if not key or "=" in key or "\0" in key or key.startswith(RESERVED_ENV_PREFIXES):
                _invalid(("env", key), "env names must be non-empty, without '=' and not "
                         "JOBYARD_* or TENSORONE_* (those are set on each run)")
        if new.time_limit_s is not None and new.time_limit_s <= 0:
            _invalid(("time_limit_s",), "time_limit_s must be positive")
        want, cap = new.resources, self.jobs.capacity
        if not want.fits_in(cap):
            short = {name: {"requested": getattr(want, name), "capacity": getattr(cap, name)}
                     for name in ("gpus", "cpus", "memory_mb")
                     if getattr(want, name) > getattr(cap, name)}
            raise Unschedulable("this server can never run the endpoint's jobs: it asks for "
                                + ", ".join(f"{v['requested']} {k} (capacity {v['capacity']})"
                                            for k, v in short.items()),
                                {"resources": short})


def _invalid(loc: tuple[str, ...], msg: str) -> None:
    raise ValidationFailed(msg, {"loc": ["body", *loc], "type": "value_error"})
