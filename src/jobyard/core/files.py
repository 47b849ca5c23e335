"""A job's files as the API sees them: its log (pages, tail, follow), its outputs, the
workspaces jobs run in, through the :class:`JobFiles` port (on disk: ``store/files.py``).

No path of the data directory leaves the core except the one a download is served from.

The file work the service does from the event loop (reads of a followed log, unpacking a
project) runs on the executor it is given: ``runtime``'s small pool for file work, so that a
job's files can slow only other file work, never the routes and the daemon that share the
default executor. Pages and tails of a log are read by the caller (a route's thread); a log is
capped in size (``log_cap_bytes``), so they are bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from jobyard.core.models import Job
from jobyard.core.ports import JobStore, TelemetryStore
from jobyard.errors import JobNotFound, NotFound, ValidationFailed

POLL_S = 0.1  # log lines are not notified: look again this soon (or at the job's change)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LogLine:
    n: int  # 0-based line number in its attempt's log
    ts: float
    stream: str  # stdout, stderr or system (a note from Jobyard itself)
    text: str


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogLine]
    next_offset: int
    eof: bool  # the job ended and no line follows


@dataclass(frozen=True, slots=True)
class LogBatch:
    lines: list[LogLine]
    attempt: int
    # Set on the last batch: the job once it ended and its whole log was sent (None if the
    # job was deleted meanwhile).
    end: Job | None = None
    ended: bool = False


# The purpose of the signed link by which a leader fetches a workspace another replica made.
WORKSPACE_LINK = "replica-workspace"


class Elsewhere(Exception):
    """What a request asks for (``what``) is on another replica (``url``): it goes there."""

    def __init__(self, url: str, what: str):
        super().__init__(f"{what} on replica {url}")
        self.url = url


class JobFiles(Protocol):
    """Where a job's files live and how they are read (``store/files.py``)."""

    def has_run(self, uid: str, attempt: int) -> bool:
        """Whether this replica holds the attempt's run directory."""
        ...

    def read_log(self, uid: str, attempt: int, offset: int, limit: int) -> list[LogLine]:
        """Complete lines ``offset .. offset+limit-1``."""

    def tail_log(self, uid: str, attempt: int, count: int) -> list[LogLine]:
        """The last ``count`` complete lines."""

    def read_log_from(self, uid: str, attempt: int, pos: int) -> tuple[list[str], int]:
        """Complete raw lines after byte ``pos``, and the position after the last one."""

    def parse_log_line(self, n: int, raw: str) -> LogLine: ...

    def output_file(self, uid: str, attempt: int, name: str) -> Path | None:
        """The output file ``name`` of an attempt, if it is a file inside its output
        directory; raises ValidationFailed when ``name`` escapes it."""

    def read_output(self, uid: str, attempt: int, name: str, max_bytes: int) -> bytes | None:
        """The first ``max_bytes`` of an output file, or None when there is none."""

    def new_workspace(self, files: Mapping[str, bytes] | None = None) -> Path:
        """A fresh workspace (the job's files go in its ``project`` directory), with
        ``files`` (name -> content) written at its top."""

    def discard_workspace(self, home: Path) -> None:
        """Remove a workspace no job took."""

    def unpack(self, archive: Path, dest: Path, max_bytes: int) -> int:
        """Extract a tar(.gz) archive into the empty directory ``dest``; returns the number of
        files. Only files and directories inside ``dest``: anything else raises
        ValidationFailed, naming no path of the server, and leaves ``dest`` empty."""

    def pack_workspace(self, name: str) -> Path | None:
        """Workspace ``name`` as a tar.gz in a temporary file (the caller removes it); None
        when there is no such workspace."""
        ...

    def uploads_dir(self) -> Path:
        """Where uploads in progress are kept."""

    def remove(self, job: Job) -> None:
        """Every file of a job: its attempts' run directories and its workspace."""


class Subscription(Protocol):
    async def wait(self, timeout: float) -> bool:
        """Wait until the job changes (True) or ``timeout`` passes (False)."""


class ChangeFeed(Protocol):
    """Wake-ups after a job's change was committed (``events/notify.py``)."""

    def listen(self, job_id: int) -> AbstractContextManager[Subscription]: ...


class JobFileService:
    """Reads of a job's files for a job the caller may see (the caller checks that).

    An attempt's files are on the replica whose daemon ran it (its ``assigned["replica"]``);
    read on another replica, they raise :class:`Elsewhere` (the API relays the request
    there) rather than answer for files this replica cannot see. ``here``: this replica.
    """

    def __init__(self, files: JobFiles, jobs: JobStore, telemetry: TelemetryStore,
                 changes: ChangeFeed, pool: Executor | None = None, here: str = ""):
        self.here = here
        self._files = files
        self._jobs = jobs
        self._telemetry = telemetry
        self._changes = changes
        self._pool = pool  # file work (None: the default executor, in tests)

    async def _on_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def locate(self, job: Job, attempt: int | None = None) -> None:
        """Raise :class:`Elsewhere` when another replica ran the attempt and this one does
        not hold its files (an attempt of a job before its retry: the replica that ran the
        job last, where it likely ran too)."""
        number = attempt or job.attempt
        where = (job.assigned or {}).get("replica")
        if where and where != self.here and not self._files.has_run(job.uid, number):
            raise Elsewhere(where, f"the files of job {job.uid} (attempt {number}) are")

    # logs ------------------------------------------------------------------------------------
    def log(self, job: Job, attempt: int | None = None, offset: int = 0, limit: int = 1000,
            tail: int | None = None) -> LogPage:
        """A page of an attempt's log (the current one by default), or its last ``tail``
        lines."""
        self.locate(job, attempt)
        number = attempt or job.attempt
        if tail:
            lines = self._files.tail_log(job.uid, number, tail)
        else:
            lines = self._files.read_log(job.uid, number, offset, limit)
        next_offset = lines[-1].n + 1 if lines else offset
        eof = job.is_terminal and not self._files.read_log(job.uid, number, next_offset, 1)
        return LogPage(lines, next_offset, eof)

    async def follow_log(self, job: Job, attempt: int | None = None, offset: int = 0,
                         next_attempts: bool = False) -> AsyncIterator[LogBatch]:
        """Complete lines of an attempt's log from line ``offset`` on, as they come; ends
        after the job ended and every line was sent. With ``next_attempts``, a retry's log
        follows. Call :meth:`locate` first: this follows what this replica holds."""
        number = attempt or job.attempt
        n = pos = 0
        while True:
            with self._changes.listen(job.id) as changed:
                fresh = await asyncio.to_thread(self._jobs.get_job, job.id)
                chunk, pos = await self._on_pool(self._files.read_log_from, job.uid, number,
                                                 pos)
                lines = []
                for raw in chunk:
                    if n >= offset:
                        lines.append(self._files.parse_log_line(n, raw))
                    n += 1
                if lines:
                    yield LogBatch(lines, number)
                if chunk:
                    continue
                if fresh is not None and next_attempts and fresh.attempt > number:
                    number, n, pos, offset = number + 1, 0, 0, 0
                    continue
                if fresh is None or fresh.is_terminal:
                    yield LogBatch([], number, fresh, ended=True)
                    return
                await changed.wait(POLL_S)

    async def log_snapshot(self, job: Job, attempt: int | None = None
                           ) -> AsyncIterator[list[LogLine]]:
        """Every complete line of an attempt's log as it is now, in chunks (a download)."""
        self.locate(job, attempt)
        number = attempt or job.attempt
        n = pos = 0
        while True:
            chunk, pos = await self._on_pool(self._files.read_log_from, job.uid, number, pos)
            if not chunk:
                return
            yield [self._files.parse_log_line(n + i, raw) for i, raw in enumerate(chunk)]
            n += len(chunk)

    # outputs ---------------------------------------------------------------------------------
    def outputs(self, job: Job, attempt: int | None = None) -> list[dict[str, Any]]:
        """The collected outputs of one attempt (every attempt's with None), by name."""
        return self._telemetry.list_outputs(job.id, attempt)

    def output_path(self, job: Job, name: str, attempt: int | None = None) -> Path:
        """The file to serve for output ``name`` of an attempt (the current one by default):
        422 when the name escapes the output directory, 404 unless it was collected."""
        self.locate(job, attempt)
        number = attempt or job.attempt
        path = self._files.output_file(job.uid, number, name)
        listed = {(r["attempt"], r["name"]) for r in self._telemetry.list_outputs(job.id, number)}
        if path is None or (number, name) not in listed:
            raise NotFound(f"job {job.uid} has no output named {name!r}")
        return path

    def linked_output(self, uid: str, attempt: int, name: str) -> Path:
        """The output a signed link names (the link is the permission): 404 when the job or
        the file is gone."""
        job = self._jobs.get_job(uid)
        if job is None:
            raise JobNotFound(f"job {uid} not found")
        self.locate(job, attempt)
        try:
            path = self._files.output_file(uid, attempt, name)
        except ValidationFailed:
            path = None
        if path is None:
            raise NotFound(f"output {name} of job {uid} not found")
        return path

    def read_output(self, job: Job, name: str, max_bytes: int) -> bytes | None:
        self.locate(job)
        return self._files.read_output(job.uid, job.attempt, name, max_bytes)

    # workspaces ------------------------------------------------------------------------------
    def new_workspace(self, files: Mapping[str, bytes] | None = None) -> Path:
        """A fresh workspace for a job about to be submitted: its files go in ``project``
        (the job's working directory); ``files`` are written beside it."""
        return self._files.new_workspace(files)

    def discard_workspace(self, home: Path) -> None:
        """Remove a workspace whose job was never submitted."""
        self._files.discard_workspace(home)

    async def unpack(self, archive: Path, dest: Path, max_bytes: int) -> int:
        """Unpack a project into ``dest`` (on the pool for file work); see ``JobFiles``."""
        return await self._on_pool(self._files.unpack, archive, dest, max_bytes)

    def uploads_dir(self) -> Path:
        return self._files.uploads_dir()

    async def workspace_archive(self, name: str) -> Path:
        """Workspace ``name`` of this replica packed for the leader that runs its job (a
        temporary file: the caller removes it); 404 when there is none."""
        path = await self._on_pool(self._files.pack_workspace, name)
        if path is None:
            raise NotFound(f"no workspace {name!r} on this replica")
        return path
