"""What the core needs from the outside world, as small abstract interfaces.

The SQL implementation lives in ``jobyard.store``; the core never imports it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, JobEvent, Principal, Resources
from jobyard.core.states import JobState


@dataclass(frozen=True, slots=True)
class Transition:
    """Move one job to ``to``; ``fields`` are set in the same write (e.g. exit_code)."""

    job_id: int
    to: JobState
    fields: dict[str, Any]
    event: dict[str, Any] | None = None  # extra data for the job_events row
    telemetry: dict[str, Any] | None = None  # merged into the job's telemetry, same write


@dataclass(frozen=True, slots=True)
class NewJob:
    job: Job  # id is ignored; the store assigns it
    idempotency: tuple[str, str] | None = None  # (key, fingerprint of the request)


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """What the scheduler needs to know of a queued job (cheap to load in bulk)."""

    id: int
    resources: Resources
    priority: int
    next_retry_at: float | None
    cluster_id: str | None = None  # runs on one free instance of this cluster


class Store(abc.ABC):
    """Persistence for jobs, their events and the principals that own them.

    Every state change goes through :meth:`apply`, which checks each move against the
    transition table and writes a ``job_events`` row in the same transaction.
    """

    # jobs ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_job(self, new: NewJob) -> tuple[Job, bool]:
        """Insert a queued job and its first event; ``(existing, False)`` on a replayed key."""

    @abc.abstractmethod
    def get_job(self, ref: int | str) -> Job | None: ...

    @abc.abstractmethod
    def list_jobs(self, org_id: int | None, query: ListJobs) -> list[Job]: ...

    @abc.abstractmethod
    def apply(self, transitions: Sequence[Transition]) -> list[Job | Exception]:
        """Apply several transitions in one transaction; a refused one yields its error."""

    @abc.abstractmethod
    def update_fields(self, job_id: int, fields: dict[str, Any], event: str | None = None,
                      in_state: JobState | None = None) -> Job | None:
        """Set non-state fields (substate, runtime, ...); ``event`` names an event to record.
        With ``in_state``, only while the job is in that state (else None)."""

    @abc.abstractmethod
    def merge_telemetry(
        self,
        job_id: int,
        patch: dict[str, Any],
        event: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Merge ``patch`` into an *active* job's telemetry (Conflict once it has ended).

        ``event`` names a job_events row to write with the patch as data; ``fields`` sets
        columns in the same write (e.g. the substate).
        """

    @abc.abstractmethod
    def jobs_in_states(self, states: Iterable[JobState], limit: int = 1000) -> list[Job]:
        """Jobs in these states; queued ones by priority (high first) then age."""

    @abc.abstractmethod
    def last_event_id(self, job_id: int) -> int:
        """The id of the job's newest event (0 if none)."""

    @abc.abstractmethod
    def queued(self, limit: int) -> list[QueuedJob]:
        """The head of the queue: by priority (high first), then age."""

    @abc.abstractmethod
    def events(self, job_id: int, after_id: int = 0, limit: int = 500) -> list[JobEvent]: ...

    @abc.abstractmethod
    def queue_position(self, job: Job) -> int:
        """1-based place of a queued job among the queued jobs ahead of it."""

    @abc.abstractmethod
    def finished_since(self, since: float) -> int: ...

    @abc.abstractmethod
    def delete_jobs(self, job_ids: list[int]) -> list[int]:
        """Delete those of these jobs that are terminal; returns their ids."""

    @abc.abstractmethod
    def count_by_state(self) -> dict[str, int]: ...

    # principals ------------------------------------------------------------------------------
    @abc.abstractmethod
    def principal_for_key(self, key_hash: str) -> Principal | None: ...

    @abc.abstractmethod
    def create_org(self, name: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def create_user(self, username: str, org: str, is_admin: bool = False) -> dict[str, Any]: ...

    @abc.abstractmethod
    def create_key(self, user_id: int, key_hash: str, prefix: str, name: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def revoke_key(self, key_id: int) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def list_keys(self, user_id: int | None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def list_users(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def list_orgs(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def find_user(self, username: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """True when no user exists yet (first start)."""

    # small shared state ----------------------------------------------------------------------
    @abc.abstractmethod
    def put_kv(self, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def get_kv(self, key: str) -> Any: ...
