"""A job's files on disk: where they live in the data directory, and how they are read.

    <data_dir>/runs/<job uid>.<attempt>/     one attempt: log, exit.json, outputs/, ...
    <data_dir>/workspaces/<id>/project       files the server made for a job (its workdir)
    <data_dir>/volumes/<volume uid>/         a storage volume's files
    <data_dir>/uploads/                      uploads in progress

Log format (written by the executor's supervisor), one output line per file line::

    <epoch seconds, 6 decimals> TAB <o|e|x> TAB <text>

``o`` is stdout, ``e`` stderr, ``x`` a note from Jobyard itself (e.g. truncation).
:class:`DiskFiles` is the core's ``JobFiles`` port; the daemon uses the path functions.
"""

from __future__ import annotations

import shutil
import tarfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from jobyard import ids
from jobyard.core.files import LogLine
from jobyard.core.models import Job
from jobyard.errors import ValidationFailed

STREAMS = {"o": "stdout", "e": "stderr", "x": "system"}
READ_CHUNK = 1 << 20  # a follower reads at most this much at a time


def run_dir(data_dir: Path | str, uid: str, attempt: int) -> Path:
    # Flat (one directory per attempt, not per job and attempt): each mkdir costs the
    # supervisor a few hundred microseconds, at hundreds of jobs a second.
    return Path(data_dir) / "runs" / f"{uid}.{attempt}"


def log_path(data_dir: Path | str, uid: str, attempt: int) -> Path:
    return run_dir(data_dir, uid, attempt) / "log"


def output_dir(data_dir: Path | str, uid: str, attempt: int) -> Path:
    return run_dir(data_dir, uid, attempt) / "outputs"


def workspaces_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "workspaces"


def volume_dir(data_dir: Path | str, uid: str) -> Path:
    """Where a volume's files live."""
    return Path(data_dir) / "volumes" / uid


# the log ---------------------------------------------------------------------------------------
def parse(n: int, raw: str) -> LogLine:
    ts, _, rest = raw.partition("\t")
    code, _, text = rest.partition("\t")
    try:
        when = float(ts)
    except ValueError:
        when = 0.0
    return LogLine(n=n, ts=when, stream=STREAMS.get(code, "stdout"), text=text)


def read_lines(path: Path, offset: int = 0, limit: int = 1000) -> list[LogLine]:
    """Complete lines ``offset .. offset+limit-1`` (a line still being written is left out)."""
    out: list[LogLine] = []
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for n, raw in enumerate(f):
                if n < offset:
                    continue
                if not raw.endswith("\n") or len(out) >= limit:
                    break
                out.append(parse(n, raw[:-1]))
    except FileNotFoundError:
        pass
    return out


def tail(path: Path, count: int) -> list[LogLine]:
    """The last ``count`` complete lines."""
    last: deque[tuple[int, str]] = deque(maxlen=count)
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for n, raw in enumerate(f):
                if raw.endswith("\n"):
                    last.append((n, raw[:-1]))
    except FileNotFoundError:
        pass
    return [parse(n, raw) for n, raw in last]


def read_from(path: Path, pos: int) -> tuple[list[str], int]:
    """Complete lines after byte ``pos``, and the position after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read(READ_CHUNK)
    except FileNotFoundError:
        return [], pos
    end = data.rfind(b"\n")
    if end < 0:
        return [], pos
    text = data[: end + 1].decode("utf-8", errors="replace")
    return text.splitlines(), pos + end + 1


# outputs ---------------------------------------------------------------------------------------
def resolve_inside(root: Path, name: str) -> Path | None:
    """The file ``name`` under ``root``, or None if it escapes it (``..``, absolute, links)."""
    if not name or name.startswith("/") or "\0" in name:
        return None
    candidate = (root / name).resolve()
    base = root.resolve()
    if candidate != base and base not in candidate.parents:
        return None
    return candidate


# workspaces ------------------------------------------------------------------------------------
def new_workspace(data_dir: Path | str) -> Path:
    """A fresh, empty workspace; returns its directory (the project goes in ``project``)."""
    home = workspaces_dir(data_dir) / ids.random_token(16)
    (home / "project").mkdir(parents=True)
    return home


def unpack(archive: Path, dest: Path, max_bytes: int, max_files: int = 200_000) -> int:
    """Extract a tar(.gz) archive into ``dest``; returns the number of files.

    Refused before anything is written when its files add up to more than ``max_bytes`` or
    ``max_files``. The standard library's ``data`` filter refuses members that would land
    outside ``dest`` (``..``, links pointing out) and devices, and strips leading slashes.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            files = [m for m in members if m.isfile()]
            total = sum(m.size for m in files)
            if total > max_bytes or len(members) > max_files:
                raise ValidationFailed(
                    f"the project is too large: {len(files)} files, {total} bytes "
                    f"(limit {max_bytes} bytes, {max_files} files)",
                    {"loc": ["project"], "type": "value_error"})
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValidationFailed(f"the project archive could not be unpacked: {exc}",
                               {"loc": ["project"], "type": "value_error"}) from exc
    return len(files)


def remove_job_files(data_dir: Path | str, job: Job) -> None:
    """Remove every attempt's run directory (log, outputs) and, when the job's working
    directory is a workspace the server made, that whole workspace (project, venv, ...)."""
    for attempt in range(1, job.attempt + 1):
        shutil.rmtree(run_dir(data_dir, job.uid, attempt), ignore_errors=True)
    if job.workdir:
        base, workdir = workspaces_dir(data_dir).resolve(), Path(job.workdir).resolve()
        if base in workdir.parents:
            shutil.rmtree(base / workdir.relative_to(base).parts[0], ignore_errors=True)


class DiskFiles:
    """The core's ``JobFiles`` port over one data directory."""

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir)

    def read_log(self, uid: str, attempt: int, offset: int, limit: int) -> list[LogLine]:
        return read_lines(log_path(self.data_dir, uid, attempt), offset, limit)

    def tail_log(self, uid: str, attempt: int, count: int) -> list[LogLine]:
        return tail(log_path(self.data_dir, uid, attempt), count)

    def read_log_from(self, uid: str, attempt: int, pos: int) -> tuple[list[str], int]:
        return read_from(log_path(self.data_dir, uid, attempt), pos)

    def parse_log_line(self, n: int, raw: str) -> LogLine:
        return parse(n, raw)

    def output_file(self, uid: str, attempt: int, name: str) -> Path | None:
        path = resolve_inside(output_dir(self.data_dir, uid, attempt), name)
        if path is None:
            raise ValidationFailed("the output name escapes the job's output directory",
                                   {"loc": ["path", "name"]})
        return path if path.is_file() else None

    def read_output(self, uid: str, attempt: int, name: str, max_bytes: int) -> bytes | None:
        try:
            path = self.output_file(uid, attempt, name)
        except ValidationFailed:
            return None
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read(max_bytes)
        except OSError:
            return None

    def new_workspace(self, files: Mapping[str, bytes] | None = None) -> Path:
        home = new_workspace(self.data_dir)
        for name, content in (files or {}).items():
            (home / name).write_bytes(content)
        return home

    def discard_workspace(self, home: Path) -> None:
        if workspaces_dir(self.data_dir).resolve() in home.resolve().parents:
            shutil.rmtree(home, ignore_errors=True)

    def unpack(self, archive: Path, dest: Path, max_bytes: int) -> int:
        return unpack(archive, dest, max_bytes)

    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def remove(self, job: Job) -> None:
        remove_job_files(self.data_dir, job)
