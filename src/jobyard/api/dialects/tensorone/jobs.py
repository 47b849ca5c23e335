"""TensorOne's job status: one job, a batch, and a live SSE stream.

Every status check (each of the three calls) counts against the caller's API key
(``tensorone_status_rate_limit``, default ``100/minute``) and answers ``X-RateLimit-*``
headers; past the limit, 429 ``RATE_LIMIT_EXCEEDED`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import ServerSentEvent

from jobyard.api.deps import read, services
from jobyard.api.dialects.tensorone.common import (
    caller,
    check_rate,
    view,
    visible_job,
)
from jobyard.api.dialects.tensorone.shapes import TensorOneRoute, camel_keys, include_set
from jobyard.api.dialects.tensorone.status import status_of, summary
from jobyard.api.responses import JSON, dumps
from jobyard.api.sse import EventSourceResponse
from jobyard.api.validation import MAX_ROW_ID, ascii_int
from jobyard.core.models import Job, Principal
from jobyard.errors import JobyardError

router = APIRouter(prefix="/v2/jobs", tags=["tensorone"], route_class=TensorOneRoute)
MAX_BATCH = 100

IncludeQuery = Query(None, description="logs, metrics, resources: repeated or comma-separated")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobIds: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    include: list[str] | str | None = None


@router.get("/{job_id}/status", summary="Get job status (TensorOne)")
def get_status(
    job_id: str,
    request: Request,
    include: list[str] | None = IncludeQuery,
    format: Literal["json", "summary"] = "json",
    who: Principal = Depends(caller),
) -> JSON:
    headers = check_rate(request, who)
    svc = services(request)
    shown = view(request, include_set(include))
    status = status_of(svc, visible_job(svc, who, job_id), shown)
    return JSON(summary(status) if format == "summary" else status, headers=headers)


@router.post("/status/batch", summary="Get the status of several jobs (TensorOne)")
def batch_status(body: BatchIn, request: Request, who: Principal = Depends(caller)) -> JSON:
    """One status check for up to 100 jobs. A job that cannot be shown is an entry of
    ``errors`` (its page envelope plus ``jobId``), never a failed batch."""
    headers = check_rate(request, who)
    svc = services(request)
    include = include_set([body.include] if isinstance(body.include, str)
                          else body.include, "body")
    shown = view(request, include)
    jobs: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for job_id in dict.fromkeys(body.jobIds):
        try:
            jobs.append(status_of(svc, visible_job(svc, who, job_id), shown))
        except JobyardError as exc:
            errors.append({"jobId": job_id, "error": exc.code, "message": exc.message,
                           "details": camel_keys(exc.details)})
    return JSON({"jobs": jobs, "errors": errors}, headers=headers)


@router.get("/{job_id}/status/stream", summary="Stream a job's status (TensorOne, SSE)")
async def stream_status(
    job_id: str,
    request: Request,
    include: list[str] | None = IncludeQuery,
    last_event_id: str | None = Header(None),
    who: Principal = Depends(caller),
) -> Response:
    """``status`` events, each the whole status object: the current one at once, then one
    per change (state, progress, step), until the job has ended."""
    headers = check_rate(request, who)
    svc = services(request)
    wanted = include_set(include)
    job = await read(svc, visible_job, svc, who, job_id)
    after = ascii_int(last_event_id, MAX_ROW_ID)
    return EventSourceResponse(_updates(request, job, wanted, after),
                               ping=svc.config.sse_heartbeat_s, headers=headers)


async def _updates(request: Request, held: Job, include: frozenset[str],
                   after: int | None) -> AsyncIterator[ServerSentEvent]:
    svc = services(request)
    last = await read(svc, svc.jobs.last_event_id, held)
    job = await read(svc, svc.jobs.refresh, held)
    sent: list[str] = []

    async def frame(event_id: int) -> ServerSentEvent | None:
        assert job is not None
        status = await asyncio.to_thread(status_of, svc, job, view(request, include))
        text = dumps(status)
        if sent and sent[0] == text:  # nothing the client sees changed
            return None
        sent[:] = [text]
        return ServerSentEvent(text, event="status", id=str(event_id))

    if job is None:
        return
    if (first := await frame(last)) is not None:
        yield first
    if job.is_terminal:
        return
    events = svc.jobs.follow_events(job, last if after is None else after)
    async with contextlib.aclosing(events) as evs:  # type: ignore[type-var]
        async for ev in evs:
            job = await read(svc, svc.jobs.refresh, held)
            if job is None:  # deleted meanwhile
                return
            if (update := await frame(ev.id)) is not None:
                yield update
            if job.is_terminal:
                return
