"""The domain model: plain dataclasses, no framework types.

Times are UNIX epoch seconds (float, UTC); the API layer renders them as ISO 8601.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobyard.core.states import JobState


@dataclass(frozen=True, slots=True)
class Resources:
    gpus: int = 0
    cpus: float = 1.0
    memory_mb: int = 0

    def fits_in(self, free: Resources) -> bool:
        return (
            self.gpus <= free.gpus and self.cpus <= free.cpus and self.memory_mb <= free.memory_mb
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failed attempt up to ``max_retries`` times, waiting ``backoff_s * 2**n``."""

    max_retries: int = 0
    backoff_s: float = 10.0
    # Which outcomes are retried: user errors, infrastructure failures, timeouts.
    on: tuple[str, ...] = ("error", "failed")

    def delay_before(self, retry_number: int) -> float:
        return float(self.backoff_s * (2 ** max(0, retry_number - 1)))


@dataclass(slots=True)
class Principal:
    """Who is calling: the owner of an API key."""

    user_id: int
    org_id: int
    username: str
    is_admin: bool = False
    key_id: int | None = None

    def sees(self, org_id: int) -> bool:
        """The one visibility rule: an org's things are seen by its members and by admins."""
        return self.is_admin or org_id == self.org_id


@dataclass(slots=True)
class Job:
    id: int
    uid: str
    user_id: int
    org_id: int
    name: str
    command: str | list[str]
    env: dict[str, str]
    workdir: str | None
    resources: Resources
    instance_type: str | None
    priority: int
    time_limit_s: float | None
    retry: RetryPolicy
    tags: list[str]
    state: JobState
    created_at: float
    substate: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    error: dict[str, Any] | None = None
    attempt: int = 1
    next_retry_at: float | None = None
    cancel_requested_at: float | None = None
    # Executor-owned handle of the current attempt (pids, run directory); JSON-safe.
    runtime: dict[str, Any] | None = None
    # What the scheduler gave it: {"gpus": [0, 1], "cpus": 2.0, "memory_mb": 0}.
    assigned: dict[str, Any] | None = None
    cancel_receipt: dict[str, Any] | None = None
    updated_at: float = 0.0
    # Facts only a vendor dialect reads, keyed by dialect ("tensorpool", "tensorone",
    # "xplenty"); the core and the daemon never look inside (the SQL column is ``extra``).
    dialect: dict[str, Any] = field(default_factory=dict)
    # Reported and measured while it runs (progress, step, metadata, metrics, cost, ...).
    telemetry: dict[str, Any] = field(default_factory=dict)
    # {"url": ..., "events": [...]} or None for the owner's default.
    webhook: dict[str, Any] | None = None
    # The cluster it runs on (its uid); None: an ephemeral one, its own allocation.
    cluster_id: str | None = None
    # That cluster's name when the job was submitted (what the native API shows).
    cluster_name: str | None = None
    # Release that cluster once the job is over, whatever the outcome (``tp job push
    # --teardown``; daemon/plugins/teardown.py).
    teardown_cluster: bool = False
    # The replica on which the server made the job's ``workdir`` (a workspace: a TensorPool
    # push, a TensorOne run's input); a leader elsewhere fetches it before it launches.
    workspace_replica: str | None = None
    # Files to keep from the working directory when an attempt ends (SubmitJob.outputs).
    output_patterns: list[str] = field(default_factory=list)
    # The daemon's record of the current attempt, kept in the store so that a restarted daemon
    # ends it the same way: its time limit ran out (it ends ``timeout``), or the service
    # stopped it (e.g. a budget; it ends ``failed`` with this error). Reset on a retry.
    timed_out: bool = False
    stop_error: dict[str, Any] | None = None
    # Pause of the current attempt: since when it is paused (None while it is not) and the
    # seconds it spent paused before; its time limit does not run while paused. Reset at launch.
    paused_at: float | None = None
    paused_s: float = 0.0

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    job_id: int
    ts: float
    kind: str  # "state" for transitions; other kinds come from telemetry
    state: str | None
    data: dict[str, Any]
