"""What jobs tell about themselves, and what is measured of them, as the API serves it:
progress reports (with a job token) and metric series.

The rules of what a report changes are in :mod:`jobyard.core.progress`; checking the token,
the job's attempt and state, and applying the reports are one store write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobyard.core.models import Job
from jobyard.core.ports import JobStore, TelemetryStore
from jobyard.core.progress import apply_reports, as_change
from jobyard.core.states import ACTIVE
from jobyard.core.tokens import Signer
from jobyard.errors import Conflict, Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class ReportResult:
    job: Job
    accepted: int
    ignored: int
    last_seq: int | None


class TelemetryService:
    def __init__(self, jobs: JobStore, telemetry: TelemetryStore, signer: Signer,
                 clock: Callable[[], float] = time.time):
        self._jobs = jobs
        self._telemetry = telemetry
        self._signer = signer
        self._clock = clock

    def report(self, token: str | None, ref: str, reports: list[dict[str, Any]]) -> ReportResult:
        """Apply a running job's reports (in ``seq`` order) with its own job token.

        401 for a bad token or one of an earlier attempt, 403 for another job, 409 once the
        job ended ("reports are closed": a report never changes a terminal job).
        """
        uid, attempt = self._signer.job_token_owner(token)
        if not ref.isdigit() and ref != uid:
            raise Forbidden("this job token is for another job")
        now = self._clock()
        counts: dict[str, Any] = {}

        def change(job: Job) -> Any:
            if ref.isdigit() and job.id != int(ref):
                raise Forbidden("this job token is for another job")
            if job.attempt != attempt:
                raise Unauthorized(f"job token expired: it is for attempt {attempt}, "
                                   f"the job is on attempt {job.attempt}")
            if job.state not in ACTIVE:
                raise Conflict(f"job {job.uid} is {job.state}; reports are closed",
                               {"state": str(job.state)})
            out = apply_reports(job.telemetry, reports, attempt=attempt, state=str(job.state),
                                substate=job.substate, started_at=job.started_at, now=now)
            counts.update(accepted=out.applied, ignored=out.ignored, last_seq=out.last_seq)
            return as_change(out)

        job, _ = self._jobs.update_telemetry(uid, change)
        return ReportResult(job, counts["accepted"], counts["ignored"], counts["last_seq"])

    def series(self, job: Job, attempt: int | None = None) -> list[tuple[float, dict[str, Any]]]:
        """``(ts, sample)`` of an attempt's resource series (the current one by default)."""
        return self._telemetry.metric_series(job.id, attempt or job.attempt)
