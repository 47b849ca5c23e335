"""The one status-mapping table: a core job state in each vendor dialect's vocabulary.

TensorPool's states come from its ``GET /job/info`` page, TensorOne's from its job-status page,
Integrate.io's from its ``Job`` schema. Where a vendor has no word for a state, the nearest one
a client of that vendor acts on correctly is used (a TensorPool client treats ``error`` as "the
user's code failed", so a time-out, which the job's own code caused, is ``error`` there).
"""

from __future__ import annotations

from typing import Literal

from jobyard.core.states import JobState, Substate

Dialect = Literal["tensorpool", "tensorone", "xplenty"]

S = JobState
#             core state       tensorpool   tensorone       xplenty
STATUS_TABLE: dict[JobState, tuple[str, str, str]] = {
    S.QUEUED:    ("pending",   "queued",       "queued"),
    S.LAUNCHING: ("pending",   "initializing", "pending"),
    S.RUNNING:   ("running",   "running",      "running"),
    S.PAUSED:    ("running",   "paused",       "running"),
    S.CANCELING: ("canceling", "running",      "pending_stoppage"),
    S.COMPLETED: ("completed", "completed",    "completed"),
    S.ERROR:     ("error",     "failed",       "failed"),
    S.FAILED:    ("failed",    "failed",       "failed"),
    S.TIMEOUT:   ("error",     "timeout",      "failed"),
    S.CANCELED:  ("canceled",  "cancelled",    "stopped"),
}
_COLUMN = {"tensorpool": 0, "tensorone": 1, "xplenty": 2}


def dialect_status(dialect: Dialect, state: JobState, substate: str | None = None) -> str:
    """``state`` as ``dialect`` names it (Integrate.io tells a stop in progress apart)."""
    if dialect == "xplenty" and state == S.CANCELING and substate == Substate.STOPPING:
        return "stopping"
    return STATUS_TABLE[state][_COLUMN[dialect]]
