"""How an attempt's end becomes a state: one function, pure, used by the daemon."""

from __future__ import annotations

import signal as _signal
from typing import Any

from jobyard.core.models import Job
from jobyard.core.ports import Transition
from jobyard.core.states import JobState, Substate
from jobyard.executors.base import ExitStatus


def decide(job: Job, status: ExitStatus, now: float, timed_out: bool) -> Transition:
    """The transition that records ``status`` for ``job`` (a retry, or a terminal state)."""
    fields: dict[str, Any] = {"substate": None, "cancel_receipt": status.receipt}
    if job.state is JobState.CANCELING and status.reason in ("stopped", "lost"):
        fields["message"] = "canceled"
        return Transition(job.id, JobState.CANCELED, fields)
    stop_error = job.stop_error
    if stop_error and status.reason in ("stopped", "lost"):
        fields["error"] = stop_error
        fields["message"] = stop_error["message"]
        return Transition(job.id, JobState.FAILED, fields)  # the service stopped it: no retry
    if timed_out and status.reason in ("stopped", "lost"):
        target = JobState.TIMEOUT
        fields["error"] = {
            "code": "TIMEOUT",
            "message": f"exceeded its time limit of {job.time_limit_s:g} s",
            "details": {"time_limit_s": job.time_limit_s},
        }
        fields["message"] = fields["error"]["message"]
    elif status.reason == "launch_failed":
        target = JobState.FAILED
        fields["error"] = _error("LAUNCH_FAILED", status.message or "the job could not be started")
    elif status.reason in ("lost", "stopped"):
        target = JobState.FAILED
        fields["error"] = _error("LOST", status.message or "the job's processes were lost")
    elif status.exit_code == 0:
        target = JobState.COMPLETED
        fields["exit_code"] = 0
    elif status.oom_kills:
        target = JobState.FAILED
        fields["exit_code"] = _nonzero(status)[0]
        fields["error"] = _out_of_memory(job, status)
    else:
        target = JobState.ERROR
        fields["exit_code"], fields["error"] = _nonzero(status)
    if target is not JobState.COMPLETED:
        fields.setdefault("message", fields["error"]["message"])
    if job.state is not JobState.CANCELING and _should_retry(job, target):
        return _retry(job, target, fields, now)
    return Transition(job.id, target, fields)


def _nonzero(status: ExitStatus) -> tuple[int, dict[str, Any]]:
    if status.signal:
        try:
            name = _signal.Signals(status.signal).name
        except ValueError:
            name = "unknown"
        err = _error("KILLED_BY_SIGNAL", f"killed by signal {status.signal} ({name})",
                     {"signal": status.signal})
        return 128 + status.signal, err
    code = status.exit_code if status.exit_code is not None else 1
    return code, _error("NONZERO_EXIT", f"exited with code {code}", {"exit_code": code})


def _out_of_memory(job: Job, status: ExitStatus) -> dict[str, Any]:
    limit = status.memory_limit_bytes or job.resources.memory_mb * 2**20
    peak = status.memory_peak_bytes
    message = f"out of memory: went over its memory limit of {_mib(limit)}"
    if peak:
        message += f" (peak {_mib(peak)})"
    killed = f"; the kernel killed {status.oom_kills} of its processes"
    return _error("OUT_OF_MEMORY", message + killed,
                  {"memory_limit_bytes": limit, "memory_peak_bytes": peak,
                   "oom_kills": status.oom_kills})


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _should_retry(job: Job, target: JobState) -> bool:
    return str(target) in job.retry.on and job.attempt <= job.retry.max_retries


def _retry(job: Job, target: JobState, fields: dict[str, Any], now: float) -> Transition:
    delay = job.retry.delay_before(job.attempt)
    ended = {k: fields.get(k) for k in ("exit_code", "error", "message")}
    return Transition(
        job.id,
        JobState.QUEUED,
        {
            "attempt": job.attempt + 1,
            "next_retry_at": now + delay,
            "substate": str(Substate.WAITING_RETRY),
            "message": f"attempt {job.attempt} ended {target}: {fields.get('message')}; "
            f"retry {job.attempt} of {job.retry.max_retries} in {delay:g} s",
            "exit_code": None,
            "error": None,
            "runtime": None,
            "assigned": None,
            "cancel_receipt": None,
            "started_at": None,
            # The next attempt starts with a clean record (a restart must not end it as this one).
            "timed_out": False,
            "stop_error": None,
        },
        {"attempt_ended": {"attempt": job.attempt, "outcome": str(target), **ended}},
    )
