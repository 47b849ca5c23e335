"""/v1/jobs/{id}/logs and /v1/jobs/{id}/events: pages and live SSE streams."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import ServerSentEvent

from jobyard.api.auth import principal, runtime
from jobyard.api.dialects.native.jobs import job_ref
from jobyard.api.dialects.native.render import iso
from jobyard.api.follow import follow_log
from jobyard.api.responses import JSON, dumps
from jobyard.api.sse import EventSourceResponse
from jobyard.core.models import Job, JobEvent, Principal
from jobyard.store import logfiles

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
EVENTS_POLL_S = 1.0


def _line(line: logfiles.LogLine) -> dict[str, Any]:
    return {**asdict(line), "ts": iso(line.ts)}


@router.get("/{ref}/logs", summary="Read a job's log; follow=true streams it (SSE)")
def logs(
    ref: str,
    request: Request,
    who: Principal = Depends(principal),
    offset: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=10000),
    tail: int | None = Query(None, ge=1, le=10000),
    attempt: int | None = Query(None, ge=1),
    follow: bool = False,
):
    rt = runtime(request)
    job = rt.service.get(who, job_ref(ref))
    path = logfiles.log_path(rt.config.data_dir, job.uid, attempt or job.attempt)
    if follow:
        return EventSourceResponse(_follow(request, job, attempt or job.attempt, offset),
                                   ping=rt.config.sse_heartbeat_s)
    lines = logfiles.tail(path, tail) if tail else logfiles.read_lines(path, offset, limit)
    next_offset = lines[-1].n + 1 if lines else offset
    eof = job.is_terminal and len(logfiles.read_lines(path, next_offset, 1)) == 0
    return JSON({"lines": [_line(x) for x in lines], "next_offset": next_offset, "eof": eof})


async def _follow(request: Request, job: Job, attempt: int, offset: int) -> AsyncIterator[Any]:
    """Stream complete lines as they are written; end once the job ended and all was sent."""
    async for batch in follow_log(runtime(request), job.id, job.uid, attempt, offset):
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
):
    rt = runtime(request)
    job = await asyncio.to_thread(rt.service.get, who, job_ref(ref))
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return EventSourceResponse(_events(request, job.id, job.uid, after),
                               ping=rt.config.sse_heartbeat_s)


async def _events(request: Request, job_id: int, uid: str, after: int) -> AsyncIterator[Any]:
    async for ev in runtime(request).hub.follow(job_id, after):
        yield _frame(ev, uid)


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
