"""``POST /v1/jobs/{ref}/report``: a running job reports its progress (job token, not API key).

The token (``JOBYARD_JOB_TOKEN``) is good for its own job and attempt while the job is active:
401 for a bad token or one of an earlier attempt, 403 for another job, 409 once the job ended
("reports are closed": a report never changes a terminal job). The rules for what a report
changes are in :mod:`jobyard.core.progress`; the checks are :mod:`jobyard.core.telemetry`'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import bearer_token
from jobyard.api.deps import services
from jobyard.api.responses import JSON
from jobyard.api.validation import StrictRoute, job_ref

router = APIRouter(prefix="/v1/jobs", tags=["reports"], route_class=StrictRoute)

Number = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ThroughputIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Count
    unit: str | None = Field(None, max_length=32)


class OutputIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=1024)
    path: str | None = Field(None, max_length=4096)
    records: int | None = Field(None, ge=0)


class ReportIn(BaseModel):
    """One report; every field is optional."""

    model_config = ConfigDict(extra="forbid")
    seq: int | None = Field(None, ge=0, description="monotonic per attempt; stale ones are ignored")
    progress: float | None = Field(None, ge=0, le=100, description="percent done")
    step: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = Field(None, max_length=200, description="null deletes")
    throughput: Count | ThroughputIn | None = None
    items_done: Count | None = None
    items_total: Count | None = None
    substate: Literal["processing", "finalizing", "uploading"] | None = None
    metrics: dict[str, Number] | None = Field(None, max_length=200)
    outputs: list[OutputIn] | None = Field(None, max_length=100)


class ReportBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reports: list[ReportIn] = Field(min_length=1, max_length=1000)


@router.post("/{ref}/report", summary="Report progress from inside a job (job token)")
def report(ref: str, body: ReportIn | ReportBatchIn, request: Request) -> JSON:
    reports = body.reports if isinstance(body, ReportBatchIn) else [body]
    items = [r.model_dump(exclude_none=True) for r in reports]
    done = services(request).telemetry.report(bearer_token(request), str(job_ref(ref)), items)
    job = done.job
    return JSON({"job_id": job.uid, "state": str(job.state), "substate": job.substate,
                 "accepted": done.accepted, "ignored": done.ignored, "last_seq": done.last_seq})
