"""``tp job listen <job id>``: WebSocket ``/job/listen/{job_id}``.

After the key frame the server sends the job's log as ``{"message": <lines>}`` frames (lines
grouped, each frame well under the CLI's 1 MiB limit; a finished job's log is replayed), a
retry's log after the attempt before it, and finally ``{"status": "success"}`` for a completed
job or ``{"status": "error"}`` otherwise, with a one-line summary.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from jobyard.api.deps import services
from jobyard.api.dialects.tensorpool.jobs import summary, visible_job
from jobyard.api.dialects.tensorpool.sockets import authenticate, fail
from jobyard.api.relay import relay_socket
from jobyard.api.validation import text_problem
from jobyard.core.files import Elsewhere
from jobyard.core.states import JobState
from jobyard.errors import ValidationFailed

router = APIRouter(tags=["tensorpool"])
MAX_FRAME_CHARS = 256 * 1024
CLOSE_WAIT_S = 10.0


@router.websocket("/job/listen/{job_id}")
async def listen(ws: WebSocket, job_id: str) -> None:
    try:
        who = await authenticate(ws)
        svc = services(ws)
        if problem := text_problem(job_id):
            raise ValidationFailed(f"job id: {problem}", {"loc": ["path", "job_id"]})
        job = await asyncio.to_thread(visible_job, svc, who, job_id)
        try:
            svc.files.locate(job, 1)
        except Elsewhere as where:
            await relay_socket(ws, where, ws.state.key_frame)
            return
        async for batch in svc.files.follow_log(job, 1, next_attempts=True):
            if batch.lines and batch.lines[0].n == 0 and batch.attempt > 1:
                await ws.send_json({"message": f"--- attempt {batch.attempt} ---"})
            for text in _frames([line.text for line in batch.lines]):
                await ws.send_json({"message": text})
            if batch.ended:
                end = batch.end or job
                ok = end.state is JobState.COMPLETED
                await ws.send_json({"status": "success" if ok else "error",
                                    "message": summary(end)})
        with contextlib.suppress(TimeoutError, WebSocketDisconnect):
            # The CLI closes once it has the terminal frame; then close our side too.
            await asyncio.wait_for(ws.receive_text(), CLOSE_WAIT_S)
        with contextlib.suppress(Exception):
            await ws.close(1000)
    except WebSocketDisconnect:
        pass
    except Exception as exc:
        await fail(ws, exc)


def _frames(lines: list[str]) -> list[str]:
    """Join lines into frames of at most MAX_FRAME_CHARS (a longer line is cut into parts)."""
    frames: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        for start in range(0, max(len(line), 1), MAX_FRAME_CHARS):
            part = line[start:start + MAX_FRAME_CHARS]
            if current and size + len(part) + 1 > MAX_FRAME_CHARS:
                frames.append("\n".join(current))
                current, size = [], 0
            current.append(part)
            size += len(part) + 1
    if current:
        frames.append("\n".join(current))
    return frames
