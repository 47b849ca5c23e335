"""Following a job's log as it is written: the one loop behind SSE log streams (native API)
and WebSocket log streams (``tp job listen``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from jobyard.core.models import Job
from jobyard.runtime import Runtime
from jobyard.store import logfiles

POLL_S = 0.1  # log lines are not notified: look again this soon (or at the job's change)


@dataclass(frozen=True, slots=True)
class LogBatch:
    lines: list[logfiles.LogLine]
    attempt: int
    # Set on the last batch: the job once it ended and its whole log was sent (None if the
    # job was deleted meanwhile).
    end: Job | None = None
    ended: bool = False


async def follow_log(rt: Runtime, job_id: int, uid: str, attempt: int, offset: int = 0,
                     next_attempts: bool = False) -> AsyncIterator[LogBatch]:
    """Complete lines of ``attempt``'s log from line ``offset`` on, as they come; ends after
    the job ended and every line was sent. With ``next_attempts``, a retry's log follows."""
    path = logfiles.log_path(rt.config.data_dir, uid, attempt)
    n = pos = 0
    while True:
        with rt.notifier.listen(job_id) as changed:
            job = await asyncio.to_thread(rt.store.jobs.get_job, job_id)
            chunk, pos = await asyncio.to_thread(_read_from, path, pos)
            lines = []
            for raw in chunk:
                if n >= offset:
                    lines.append(logfiles.parse(n, raw))
                n += 1
            if lines:
                yield LogBatch(lines, attempt)
            if chunk:
                continue
            if job is not None and next_attempts and job.attempt > attempt:
                attempt, n, pos, offset = attempt + 1, 0, 0, 0
                path = logfiles.log_path(rt.config.data_dir, uid, attempt)
                continue
            if job is None or job.is_terminal:
                yield LogBatch([], attempt, job, ended=True)
                return
            await changed.wait(POLL_S)


def _read_from(path: Path, pos: int) -> tuple[list[str], int]:
    """Complete lines after byte ``pos``, and the position after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read(1 << 20)
    except FileNotFoundError:
        return [], pos
    end = data.rfind(b"\n")
    if end < 0:
        return [], pos
    text = data[: end + 1].decode("utf-8", errors="replace")
    return text.splitlines(), pos + end + 1
