"""Canonical job states and the one transition table.

Every state change in the project goes through :func:`check_transition`; a move that is not in
:data:`TRANSITIONS` raises :class:`~jobyard.errors.IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum

from jobyard.errors import IllegalTransition


class JobState(StrEnum):
    QUEUED = "queued"  # accepted, waiting for resources (or for its next retry)
    LAUNCHING = "launching"  # admitted; the executor is starting it
    RUNNING = "running"
    PAUSED = "paused"
    CANCELING = "canceling"  # cancel requested; stopping its processes
    COMPLETED = "completed"  # exit code 0
    ERROR = "error"  # user code failed (non-zero exit)
    FAILED = "failed"  # infrastructure failed (launch failed, node or server lost)
    TIMEOUT = "timeout"  # exceeded its time limit
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {JobState.COMPLETED, JobState.ERROR, JobState.FAILED, JobState.TIMEOUT, JobState.CANCELED}
)

S = JobState
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # queued -> canceled directly: no process exists yet.
    S.QUEUED: frozenset({S.LAUNCHING, S.CANCELED, S.FAILED}),
    S.LAUNCHING: frozenset({S.RUNNING, S.FAILED, S.CANCELING, S.QUEUED}),
    # running -> queued is a retry: a new attempt of the same job.
    S.RUNNING: frozenset(
        {S.COMPLETED, S.ERROR, S.FAILED, S.TIMEOUT, S.CANCELING, S.PAUSED, S.QUEUED}
    ),
    # paused -> running is a resume. A job whose processes end while it is paused (killed,
    # or exited just before the freeze landed) keeps its real outcome, as from running.
    S.PAUSED: frozenset(
        {S.RUNNING, S.CANCELING, S.COMPLETED, S.ERROR, S.FAILED, S.TIMEOUT, S.QUEUED}
    ),
    # A job that exits by itself before the stop signal lands keeps its real outcome.
    S.CANCELING: frozenset({S.CANCELED, S.COMPLETED, S.ERROR, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.ERROR: frozenset(),
    S.FAILED: frozenset(),
    S.TIMEOUT: frozenset(),
    S.CANCELED: frozenset(),
}

# Where a job is while it holds resources (an executor process may exist).
ACTIVE = frozenset({S.LAUNCHING, S.RUNNING, S.PAUSED, S.CANCELING})


def check_transition(current: JobState, target: JobState) -> None:
    """Raise IllegalTransition unless ``current -> target`` is in the table."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"a job in state '{current}' cannot become '{target}'",
            {"from": str(current), "to": str(target)},
        )


class Substate(StrEnum):
    WAITING_RESOURCES = "waiting_for_resources"
    WAITING_RETRY = "waiting_for_retry"
    WARMING_UP = "warming_up"
    PROCESSING = "processing"
    FINALIZING = "finalizing"
    UPLOADING = "uploading"
    STOPPING = "stopping"
