"""A job's outputs: the files it leaves in ``JOBYARD_OUTPUT_DIR``, collected by
:class:`OutputCollector` when an attempt's processes are gone, before its end is recorded.

Files under ``JOBYARD_OUTPUT_DIR`` are listed (name, size, records for line-based files);
outputs a job declared with ``jobyard.job.output(name, path)``, and files matching the job's
``outputs`` patterns (relative to its working directory), are linked (or copied) in first.
While it works the job shows substate ``uploading``. An attempt that did not complete lists
what exists as partial results. Files are found safely: inside the output directory, never
through a link (:func:`scan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobyard.config import Config
from jobyard.core.models import Job
from jobyard.core.ports import Store
from jobyard.core.states import Substate
from jobyard.daemon.hooks import AttemptHook
from jobyard.errors import JobyardError
from jobyard.executors.base import ExitStatus
from jobyard.store.files import output_dir, resolve_inside, run_dir

log = logging.getLogger(__name__)

# Files counted in records (lines); others are listed with records = None.
LINE_BASED = {".jsonl", ".ndjson", ".csv", ".tsv", ".txt", ".log"}
MAX_FILES = 10_000


@dataclass(frozen=True, slots=True)
class OutputFile:
    name: str  # relative to the output directory, "/"-separated
    size: int
    records: int | None


class OutputCollector(AttemptHook):
    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store

    async def ending(self, job: Job, status: ExitStatus, final: bool) -> dict[str, Any]:
        root = output_dir(self.config.data_dir, job.uid, job.attempt)
        declared = [d for d in job.telemetry.get("declared_outputs") or []
                    if d.get("attempt", job.attempt) == job.attempt]  # not a past attempt's
        patterns = job.output_patterns
        if patterns:
            workdir = Path(job.workdir) if job.workdir else run_dir(
                self.config.data_dir, job.uid, job.attempt)
            await asyncio.to_thread(gather, workdir, patterns, root)
        if not declared and not _has_entries(root):
            return {}
        with contextlib.suppress(JobyardError):  # it may have ended meanwhile: just collect
            await asyncio.to_thread(
                self.store.jobs.merge_telemetry, job.id, {}, "substate",
                {"substate": str(Substate.UPLOADING)},
            )
        files = await asyncio.to_thread(self._collect, root, declared)
        partial = not (status.reason == "exited" and status.exit_code == 0)
        rows = [{"name": f.name, "size": f.size, "records": f.records, "partial": partial}
                for f in files]
        await asyncio.to_thread(self.store.telemetry.record_outputs, job.id, job.attempt, rows)
        return {"outputs": {"attempt": job.attempt, "count": len(rows), "partial": partial,
                            "bytes": sum(f.size for f in files)}}

    def _collect(self, root: Path, declared: list[dict[str, Any]]) -> list[OutputFile]:
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
            if source and not target.exists():
                _bring_in(Path(source), target)
        return scan(root, records)


def gather(workdir: Path, patterns: list[str], root: Path) -> int:
    """Bring the files matching ``patterns`` (relative to ``workdir``; a directory brings all
    its files) into ``root`` under the same relative paths. Links and anything that resolves
    outside ``workdir`` are skipped. Returns how many files were brought in."""
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
                if not target.exists():
                    _bring_in(real, target)
                    count += 1
                if count >= MAX_FILES:
                    return count
    return count


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


def _bring_in(source: Path, target: Path) -> None:
    """Hard-link a declared file into the output directory, or copy it across filesystems."""
    if not source.is_file() or source.is_symlink():
        log.warning("declared output %s is not a regular file; skipped", source)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# finding the files -----------------------------------------------------------------------------
def scan(root: Path, declared_records: dict[str, int] | None = None) -> list[OutputFile]:
    """Regular files under ``root`` (symlinks are skipped: they could point anywhere)."""
    declared_records = declared_records or {}
    found: list[OutputFile] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            st = path.lstat()
            if not path.is_file() or path.is_symlink():
                continue
            name = path.relative_to(root).as_posix()
            records = declared_records.get(name)
            if records is None and path.suffix.lower() in LINE_BASED:
                records = count_lines(path)
            found.append(OutputFile(name, st.st_size, records))
            if len(found) >= MAX_FILES:
                return found
    return found


def count_lines(path: Path) -> int:
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)  # a last line without a newline counts too
