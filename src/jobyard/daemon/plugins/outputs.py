"""A job's outputs: the files it leaves in ``JOBYARD_OUTPUT_DIR``, collected by
:class:`OutputCollector` when an attempt's processes are gone, before its end is recorded.

Files under ``JOBYARD_OUTPUT_DIR`` are listed (name, size, records for line-based files);
outputs a job declared with ``jobyard.job.output(name, path)``, and files matching the job's
``outputs`` patterns (relative to its working directory), are linked (or copied) in first.
While it works the job shows substate ``uploading``. An attempt that did not complete lists
what exists as partial results. Files are found safely: inside the output directory, never
through a link (:func:`scan`).

The work is bounded, whatever a job leaves behind: records are counted from a file's data
only (``SEEK_DATA``/``SEEK_HOLE`` skip the holes of a sparse file, which hold no newline), at
most :data:`FILE_MAX_BYTES` of data a file and :data:`ATTEMPT_MAX_BYTES` and
:data:`COUNT_BUDGET_S` an attempt (:class:`CountBudget`); a file past the cap is listed with
``records`` None, and the attempt's summary says how many (``records_uncounted``). Scanning and
counting run on the executor the collector is given (``runtime``'s small pool for file work),
never on the default one that routes and the daemon share.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from jobyard.config import Config
from jobyard.core.models import Job
from jobyard.core.ports import Store
from jobyard.core.states import Substate
from jobyard.daemon.hooks import AttemptHook
from jobyard.errors import JobyardError
from jobyard.executors import identity
from jobyard.executors.base import ExitStatus
from jobyard.store.files import output_dir, resolve_inside, run_dir, work_dir

log = logging.getLogger(__name__)

# Files counted in records (lines); others are listed with records = None.
LINE_BASED = {".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".log"}
MAX_FILES = 10_000
FILE_MAX_BYTES = 256 << 20  # data read to count one file's records, at most
ATTEMPT_MAX_BYTES = 1 << 30  # ... and all of an attempt's files
COUNT_BUDGET_S = 5.0  # time spent counting an attempt's records, at most
COUNT_CHUNK = 1 << 20
T = TypeVar("T")


@dataclass
class CountBudget:
    """What counting an attempt's records may still cost; ``uncounted``: files left at None
    because a cap was reached. ``deadline`` is on ``time.monotonic()``."""

    bytes_left: int = ATTEMPT_MAX_BYTES
    file_max_bytes: int = FILE_MAX_BYTES
    deadline: float = field(default_factory=lambda: time.monotonic() + COUNT_BUDGET_S)
    uncounted: int = 0
    bytes_read: int = 0


@dataclass(frozen=True, slots=True)
class OutputFile:
    name: str  # relative to the output directory, "/"-separated
    size: int
    records: int | None


class OutputCollector(AttemptHook):
    def __init__(self, config: Config, store: Store, pool: Executor | None = None,
                 budget: Callable[[], CountBudget] = CountBudget):
        self.config = config
        self.store = store
        self.pool = pool  # file work runs here (None: the default executor, in tests)
        self.budget = budget  # a fresh budget for each attempt

    async def _on_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def ending(self, job: Job, status: ExitStatus, final: bool) -> dict[str, Any]:
        root = output_dir(self.config.data_dir, job.uid, job.attempt)
        owner = self._owner(job)
        if owner is not None:  # its other jobs may not touch what is served from now on
            reclaim(root)
        declared = [d for d in job.telemetry.get("declared_outputs") or []
                    if d.get("attempt", job.attempt) == job.attempt]  # not a past attempt's
        patterns = job.output_patterns
        if patterns:
            workdir = Path(job.workdir) if job.workdir else work_dir(run_dir(
                self.config.data_dir, job.uid, job.attempt))
            await self._on_pool(gather, workdir, patterns, root, owner)
        if not declared and not _has_entries(root):
            return {}
        with contextlib.suppress(JobyardError):  # it may have ended meanwhile: just collect
            await asyncio.to_thread(
                self.store.jobs.merge_telemetry, job.id, {}, "substate",
                {"substate": str(Substate.UPLOADING)},
            )
        budget = self.budget()
        files = await self._on_pool(self._collect, root, declared, budget, owner)
        partial = not (status.reason == "exited" and status.exit_code == 0)
        rows = [{"name": f.name, "size": f.size, "records": f.records, "partial": partial}
                for f in files]
        await asyncio.to_thread(self.store.telemetry.record_outputs, job.id, job.attempt, rows)
        summary: dict[str, Any] = {"attempt": job.attempt, "count": len(rows),
                                   "partial": partial, "bytes": sum(f.size for f in files)}
        if budget.uncounted:
            summary["records_uncounted"] = budget.uncounted
        return {"outputs": summary}

    def _owner(self, job: Job) -> int | None:
        """The uid whose files a job may bring into its outputs (None: any the server reads)."""
        try:
            tenant = identity.of_job(self.config.job_identity, self.config.job_uid_range,
                                     job.org_id, job.user_id, str(self.config.data_dir))
        except ValueError:
            return None
        return tenant.uid if tenant else None

    def _collect(self, root: Path, declared: list[dict[str, Any]],
                 budget: CountBudget, owner: int | None) -> list[OutputFile]:
        records: dict[str, int] = {}
        for item in declared:
            name, source = str(item.get("name") or ""), item.get("path")
            target = resolve_inside(root, name) if name else None
            if target is None:
                log.warning("declared output %r refused: not a plain name inside the output "
                            "directory", name)
                continue
            if item.get("records") is not None:
                records[name] = int(item["records"])
            if source and _inside(target.parent, root.resolve()):
                _bring_in(Path(source), target, owner)
        return scan(root, records, budget)


def gather(workdir: Path, patterns: list[str], root: Path, owner: int | None = None) -> int:
    """Bring the files matching ``patterns`` (relative to ``workdir``; a directory brings all
    its files) into ``root`` under the same relative paths. Links, anything that resolves
    outside ``workdir`` and files ``owner`` (a uid) does not own are skipped. Returns how many
    files were brought in."""
    base = workdir.resolve()
    out = root.resolve()
    count = 0
    for pattern in patterns:
        clean = pattern.strip().rstrip("/")
        if not clean or clean.startswith("/") or ".." in clean.split("/"):
            continue
        matches = sorted(base.glob(clean)) if any(c in clean for c in "*?[") else [base / clean]
        for match in matches:
            for path in _files_under(match):
                real = path.resolve()
                if base not in real.parents or out == real or out in real.parents:
                    continue
                target = out / real.relative_to(base)
                if target.exists() or target.is_symlink() or not _inside(target.parent, out):
                    continue
                if _bring_in(real, target, owner):
                    count += 1
                if count >= MAX_FILES:
                    return count
    return count


def _inside(folder: Path, root: Path) -> bool:
    """Make ``folder`` under ``root`` one directory at a time; False if a link (one the job
    left in its output directory) or a file is in the way: the server's writes must not be
    led elsewhere."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return False
        try:
            current.mkdir(exist_ok=True)
        except OSError:
            return False
    return True


def _files_under(path: Path) -> list[Path]:
    if path.is_symlink() or not path.exists():
        return []
    if path.is_file():
        return [path]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        dirnames.sort()
        found.extend(Path(dirpath) / f for f in sorted(filenames))
    return [f for f in found if not f.is_symlink()]


def _has_entries(root: Path) -> bool:
    try:
        with os.scandir(root) as it:
            return next(it, None) is not None
    except OSError:
        return False


def _bring_in(source: Path, target: Path, owner: int | None = None) -> bool:
    """Hard-link a file into the output directory, or copy it across filesystems; True if it
    came in. Only a regular file, reached without a link at its end and, with ``owner``, owned
    by that uid: the server reads anything, a job must not borrow that through its outputs."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        log.warning("output %s skipped: %s", source, exc.strerror)
        return False
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (owner is not None and st.st_uid != owner):
            log.warning("output %s skipped: not a regular file of the job's", source)
            return False
        if os.path.lexists(target):
            return False
        try:  # the very file checked, not whatever the path names by now
            os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
        except OSError:
            copy_data(src, target)
    return True


def reclaim(root: Path) -> None:
    """Take a job's output directory back: the server's, closed, so nothing of the job's
    identity can change what is in it (or what it will serve) from now on."""
    with contextlib.suppress(FileNotFoundError):
        os.lchown(root, 0, 0)
        root.chmod(0o700)


def copy_data(src: BinaryIO, target: Path) -> None:
    """Copy an open file's data and leave its holes holes: a 20 GB sparse file costs what its
    data costs, in time and on disk (``shutil.copyfile`` would write every zero)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(os.open(target, flags, 0o644), "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        for start, end in data_extents(src.fileno(), size):
            pos = start
            while pos < end:
                chunk = os.pread(src.fileno(), min(COUNT_CHUNK, end - pos), pos)
                if not chunk:
                    break
                os.pwrite(dst.fileno(), chunk, pos)
                pos += len(chunk)
        dst.truncate(size)


# finding the files -----------------------------------------------------------------------------
def scan(root: Path, declared_records: dict[str, int] | None = None,
         budget: CountBudget | None = None) -> list[OutputFile]:
    """Regular files under ``root`` (symlinks are skipped: they could point anywhere); records
    of line-based files counted within ``budget`` (a fresh :class:`CountBudget` by default)."""
    declared_records = declared_records or {}
    budget = budget if budget is not None else CountBudget()
    found: list[OutputFile] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            name = path.relative_to(root).as_posix()
            records = declared_records.get(name)
            if records is None and path.suffix.lower() in LINE_BASED:
                records = count_lines(path, budget)
                if records is None:
                    budget.uncounted += 1
            found.append(OutputFile(name, st.st_size, records))
            if len(found) >= MAX_FILES:
                return found
    return found


def count_lines(path: Path, budget: CountBudget | None = None) -> int | None:
    """The lines of ``path`` (a last line without a newline counts too), read from its data
    only: a hole reads as zeros, so it holds no newline and is skipped, and a 20 GB sparse file
    costs a few system calls. None when counting would pass ``budget`` (its bytes, its
    deadline) or the file cannot be read: unknown, never a guess."""
    budget = budget if budget is not None else CountBudget()
    limit = min(budget.file_max_bytes, budget.bytes_left)
    lines = read = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        for start, end in data_extents(fd, size):
            pos = start
            while pos < end:
                if read >= limit or time.monotonic() > budget.deadline:
                    return None
                chunk = os.pread(fd, min(COUNT_CHUNK, end - pos, limit - read), pos)
                if not chunk:
                    break  # it shrank meanwhile
                lines += chunk.count(b"\n")
                read += len(chunk)
                pos += len(chunk)
        last = os.pread(fd, 1, size - 1)  # a hole at the end reads as b"\0"
    except OSError:
        return None
    finally:
        os.close(fd)
        budget.bytes_read += read
        budget.bytes_left -= read
    return lines + (0 if last == b"\n" else 1)


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` byte ranges of an open file that hold data, holes left out; the
    whole file where the system or the file system cannot tell."""
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        yield 0, size
        return
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, seek_data)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole from ``pos`` to the end
                return
            yield pos, size  # no hole support here (EINVAL, EOPNOTSUPP)
            return
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, seek_hole), size)
        except OSError:
            end = size
        if end <= start:
            end = size
        yield start, end
        pos = end
