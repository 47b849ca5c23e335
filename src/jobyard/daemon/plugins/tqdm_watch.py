"""Progress from tqdm bars, with no code change in the job: the daemon side.

The job's supervisor keeps the latest bar of its output in ``progress.json`` in the run
directory (see :class:`jobyard.executors.runfiles.ProgressFile`). :class:`TqdmWatcher` looks at
those files of the running attempts every :data:`POLL_S` and applies a changed one through the
same rules as a report (:mod:`jobyard.core.progress`, source ``tqdm``); the last bar is
applied before an attempt's end is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from jobyard.core.models import Job
from jobyard.core.ports import Store
from jobyard.core.progress import apply_reports, as_change, from_tqdm
from jobyard.core.states import ACTIVE
from jobyard.daemon.hooks import AttemptHook
from jobyard.errors import JobyardError
from jobyard.executors.base import ExitStatus, Handle

log = logging.getLogger(__name__)
POLL_S = 0.5
MAX_FILE_BYTES = 65536


@dataclass(slots=True)
class _Watched:
    attempt: int
    path: str
    seen: tuple[int, int] | None = None  # (inode, mtime_ns) of the file last applied


class TqdmWatcher(AttemptHook):
    def __init__(self, store: Store, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self._watched: dict[int, _Watched] = {}
        self._task: asyncio.Task[None] | None = None

    async def started(self, job: Job, handle: Handle) -> None:
        path = os.path.join(handle.run_dir, "progress.json")
        self._watched[job.id] = _Watched(job.attempt, path)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="jobyard-tqdm-watch")

    async def ending(self, job: Job, status: ExitStatus, final: bool) -> dict[str, Any]:
        watched = self._watched.pop(job.id, None)
        if watched is not None:
            await self._check({job.id: watched})  # the final bar, before the end is recorded
        return {}

    async def _poll(self) -> None:
        while self._watched:
            await asyncio.sleep(self.poll_s)
            try:
                await self._check(dict(self._watched))
            except Exception:  # never let one bad sweep end the watching
                log.exception("tqdm progress sweep failed")

    async def _check(self, watched: dict[int, _Watched]) -> None:
        # One job (an attempt's end): a stat is cheaper than a thread hand-off.
        bars = (_read_changed(watched) if len(watched) == 1
                else await asyncio.to_thread(_read_changed, watched))
        for job_id, bar in bars:
            attempt = watched[job_id].attempt
            with contextlib.suppress(JobyardError):  # gone or ended meanwhile
                await asyncio.to_thread(self.store.jobs.update_telemetry, job_id,
                                        partial(_change, attempt=attempt, bar=bar))


def _read_changed(watched: dict[int, _Watched]) -> list[tuple[int, dict[str, Any]]]:
    """The bars whose file changed since last seen (runs in a worker thread)."""
    out = []
    for job_id, w in watched.items():
        try:
            st = os.stat(w.path)
            if (st.st_ino, st.st_mtime_ns) == w.seen or st.st_size > MAX_FILE_BYTES:
                continue
            with open(w.path, "rb") as f:
                bar = json.loads(f.read())
        except (OSError, ValueError):
            continue
        w.seen = (st.st_ino, st.st_mtime_ns)
        if isinstance(bar, dict):
            out.append((job_id, bar))
    return out


def _change(job: Job, attempt: int, bar: dict[str, Any]) -> Any:
    if job.attempt != attempt or job.state not in ACTIVE:
        return None
    out = apply_reports(job.telemetry, [from_tqdm(bar)], attempt=attempt, state=str(job.state),
                        substate=job.substate, started_at=job.started_at, now=time.time(),
                        source="tqdm")
    return as_change(out)
