"""/v1/jobs/{id}/logs and /v1/jobs/{id}/events: pages and live SSE streams."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sse_starlette import ServerSentEvent

from jobyard.api.auth import principal
from jobyard.api.deps import services
from jobyard.api.responses import JSON, dumps
from jobyard.api.sse import EventSourceResponse
from jobyard.api.validation import MAX_ROW_ID, StrictRoute, ascii_int, job_ref
from jobyard.core.files import LogLine
from jobyard.core.models import Job, JobEvent, Principal
from jobyard.core.services import Services
from jobyard.core.times import iso

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)
EVENTS_POLL_S = 1.0


def _line(line: LogLine) -> dict[str, Any]:
    return {**asdict(line), "ts": iso(line.ts)}


@router.get("/{ref}/logs", summary="Read a job's log; follow=true streams it (SSE)")
def logs(
    ref: str,
    request: Request,
    who: Principal = Depends(principal),
    offset: int = Query(0, ge=0, le=MAX_ROW_ID),
    limit: int = Query(1000, ge=1, le=10000),
    tail: int | None = Query(None, ge=1, le=10000),
    attempt: int | None = Query(None, ge=1, le=MAX_ROW_ID),
    follow: bool = False,
) -> Response:
    svc = services(request)
    job = svc.jobs.get(who, job_ref(ref))
    if follow:
        svc.files.locate(job, attempt)  # before the answer starts: it may be relayed
        return EventSourceResponse(_follow(svc, job, attempt, offset),
                                   ping=svc.config.sse_heartbeat_s)
    page = svc.files.log(job, attempt, offset, limit, tail)
    return JSON({"lines": [_line(x) for x in page.lines], "next_offset": page.next_offset,
                 "eof": page.eof})


async def _follow(svc: Services, job: Job, attempt: int | None,
                  offset: int) -> AsyncIterator[Any]:
    """Stream complete lines as they are written; end once the job ended and all was sent."""
    async for batch in svc.files.follow_log(job, attempt, offset):
        for line in batch.lines:
            yield ServerSentEvent(dumps(_line(line)), event="line", id=str(line.n))
        if batch.ended:
            state = str(batch.end.state) if batch.end else None
            yield ServerSentEvent(dumps({"state": state}), event="end")


@router.get("/{ref}/events", summary="Stream a job's events (SSE), resumable")
async def events(
    ref: str,
    request: Request,
    who: Principal = Depends(principal),
    last_event_id: str | None = Header(None),
) -> Response:
    svc = services(request)
    job = await asyncio.to_thread(svc.jobs.get, who, job_ref(ref))
    after = ascii_int(last_event_id, MAX_ROW_ID) or 0
    return EventSourceResponse(_events(svc, job, after), ping=svc.config.sse_heartbeat_s)


async def _events(svc: Services, job: Job, after: int) -> AsyncIterator[Any]:
    async for ev in svc.jobs.follow_events(job, after):
        yield _frame(ev, job.uid)


def _frame(ev: JobEvent, uid: str) -> bytes:
    """An event's SSE frame, encoded once however many streams carry it."""
    frame = _FRAMES.get(ev.id)
    if frame is None:
        body = {"job_id": uid, "job_number": ev.job_id, "event_id": ev.id, "ts": iso(ev.ts),
                "kind": ev.kind, "state": ev.state, **ev.data}
        frame = ServerSentEvent(dumps(body), event=ev.kind, id=str(ev.id)).encode()
        _FRAMES[ev.id] = frame
        if len(_FRAMES) > 4096:
            _FRAMES.popitem(last=False)
    return frame


_FRAMES: OrderedDict[int, bytes] = OrderedDict()
