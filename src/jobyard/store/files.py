"""A job's files on disk: where they live in the data directory, and how they are read.

    <data_dir>/runs/<job uid>.<attempt>/     one attempt: log, exit.json, outputs/, work/, ...
    <data_dir>/workspaces/<id>/project       files the server made for a job (its workdir)
    <data_dir>/volumes/<volume uid>/         a storage volume's files
    <data_dir>/uploads/                      uploads in progress
    <data_dir>/homes/<uid>/                  the home of a tenant's OS identity
    <data_dir>/client/<version>/             the reporting client, readable by every job

Everything is the server's (``0700``/``0600``). When jobs run as tenants' own identities, the
folders on the way to what a job may use (``runs``, ``workspaces``, ``volumes``, ``homes``,
and each run dir) are ``0711``: passable, not listable; what a job writes is its identity's.

Log format (written by the executor's supervisor), one output line per file line::

    <epoch seconds, 6 decimals> TAB <o|e|x> TAB <text>

``o`` is stdout, ``e`` stderr, ``x`` a note from Jobyard itself (e.g. truncation).
:class:`DiskFiles` is the core's ``JobFiles`` port; the daemon uses the path functions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from jobyard import ids
from jobyard.core.files import LogLine
from jobyard.core.models import Job
from jobyard.errors import StorageFull, ValidationFailed, storage_fault

STREAMS = {"o": "stdout", "e": "stderr", "x": "system"}
READ_CHUNK = 1 << 20  # a follower reads at most this much at a time
COPY_CHUNK = 1 << 20


def run_dir(data_dir: Path | str, uid: str, attempt: int) -> Path:
    # Flat (one directory per attempt, not per job and attempt): each mkdir costs the
    # supervisor a few hundred microseconds, at hundreds of jobs a second.
    return Path(data_dir) / "runs" / f"{uid}.{attempt}"


PASSABLE = ("runs", "workspaces", "volumes", "homes")


def make_dirs(path: Path, passable: bool) -> None:
    """``mkdir -p``, the folders it makes passable (``0711``) when ``passable``: whatever the
    umask, a data dir made for tenants does not close its own new parents to them."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        if passable:
            folder.chmod(0o711)


def prepare_data_dir(data_dir: Path | str, tenants: bool) -> None:
    """Create the data dir and its top folders, closed to every other OS user; passable
    (``0711``) on the way to jobs' own folders when ``tenants`` run as their own identities."""
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    mode = 0o711 if tenants else 0o700
    root.chmod(mode)
    for name in PASSABLE:
        (root / name).mkdir(exist_ok=True)
        (root / name).chmod(mode)


def work_dir(run: Path) -> Path:
    """Where a job without a ``workdir`` of its own runs: its attempt's, the job's to write
    (the run directory itself holds the supervisor's files)."""
    return run / "work"


def server_files(data_dir: Path | str, database_url: str,
                 config_file: str | None) -> tuple[str, ...]:
    """What of the server's a job must never see: its data dir, a SQLite store (with its
    ``-wal`` and ``-shm``) and the config file wherever they are."""
    paths = [str(data_dir)]
    if database_url.startswith("sqlite:///"):
        store = database_url.removeprefix("sqlite:///").split("?", 1)[0]
        paths += [store, f"{store}-wal", f"{store}-shm"]
    if config_file:
        paths.append(config_file)
    return tuple(paths)


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
    (home / "project").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)  # given to the job's identity when it launches
    return home


def pack_workspace(data_dir: Path | str, name: str, into: Path) -> bool:
    """Write workspace ``name`` to ``into`` as a tar.gz (its regular files and folders: what
    :func:`unpack` takes); False when there is no such workspace."""
    home = workspaces_dir(data_dir) / name
    if not name.isalnum() or not home.is_dir() or home.is_symlink():
        return False
    with tarfile.open(into, "w:gz", compresslevel=1) as tar:
        for root, dirs, files in os.walk(home):  # links to folders are not walked into
            for entry in (*dirs, *files):
                full = os.path.join(root, entry)
                kind = os.lstat(full).st_mode
                if stat.S_ISDIR(kind) or stat.S_ISREG(kind):
                    tar.add(full, arcname=os.path.relpath(full, home), recursive=False)
    return True


# unpacking a project --------------------------------------------------------------------------
# A project holds regular files and directories, nothing else: our packer
# (api/dialects/tensorpool/clientside.py) never sends links, and an archive that does is refused.
MAX_NAME_BYTES = 1024  # a member's name, at most (a path component: NAME_MAX, 255)
SHOWN_NAME_CHARS = 80  # of a refused member's name in a message
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = ((tarfile.TarInfo.issym, "a symbolic link"), (tarfile.TarInfo.islnk, "a hard link"),
          (tarfile.TarInfo.ischr, "a character device"), (tarfile.TarInfo.isblk, "a block device"),
          (tarfile.TarInfo.isfifo, "a FIFO"))


def unpack(archive: Path, dest: Path, max_bytes: int, max_files: int = 200_000) -> int:
    """Extract a tar(.gz) archive into the empty directory ``dest``; returns the number of files.

    Only regular files and directories are accepted, under relative names without ``..``;
    a link of either kind, a device or a FIFO, an absolute or over-long name refuses the whole
    archive, as do files adding up to more than ``max_bytes`` or ``max_files`` members. Every
    member is checked before anything is written. Members are then written one by one, never
    through ``TarFile.extract``/``extractall`` or a ``tarfile`` filter: each directory is
    opened relative to its parent without following links (``O_NOFOLLOW``), each target's parent
    must resolve (strictly, ``realpath(strict=True)``) inside ``dest``, and a file is created
    without following a link and refused if another name links to it. So the checks hold on
    every Python, including those whose ``data`` filter can be bypassed (CVE-2025-4517 and its
    siblings: before 3.11.13, 3.12.11, 3.13.4).

    A refusal raises ValidationFailed naming the member as the archive does (never a path of
    the server), a full disk StorageFull; either leaves ``dest`` empty.
    """
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, max_bytes, max_files)
            _extract(tar, members, dest)
    except (ValidationFailed, StorageFull):
        _empty(dest)
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        _empty(dest)
        reason = _reason(exc)
        raise (storage_fault(exc) or _refused(
            f"the project archive could not be read: {reason}")) from exc
    return sum(1 for m, _ in members if m.isreg())


def _refused(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"loc": ["project"], "type": "value_error"})


def _shown(name: str) -> str:
    return repr(name if len(name) <= SHOWN_NAME_CHARS else name[:SHOWN_NAME_CHARS] + "...")


def _reason(exc: BaseException) -> str:
    """What went wrong, without the paths an OSError carries (the server's own)."""
    if isinstance(exc, OSError) and (exc.filename is not None or exc.strerror):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _checked_members(tar: tarfile.TarFile, max_bytes: int,
                     max_files: int) -> list[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Every member with its name's parts, once all are checked (read one header at a time:
    an archive of too many members is refused before the rest is read)."""
    found: list[tuple[tarfile.TarInfo, tuple[str, ...]]] = []
    total = 0
    for member in tar:
        if len(found) >= max_files:
            raise _refused(f"the project is too large: more than {max_files} files")
        parts = _member_parts(member)
        if member.isreg():
            total += member.size
            if total > max_bytes:
                raise _refused(f"the project is too large: its files add up to more than "
                               f"{max_bytes} bytes")
        found.append((member, parts))
    return found


def _member_parts(member: tarfile.TarInfo) -> tuple[str, ...]:
    name = member.name
    for test, kind in _KINDS:
        if test(member):
            raise _refused(f"the project archive is refused: {_shown(name)} is {kind} "
                           "(only files and directories are accepted)")
    if not (member.isreg() or member.isdir()):
        raise _refused(f"the project archive is refused: {_shown(name)} is of an unknown "
                       f"type ({member.type!r})")
    if "\0" in name or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise _refused(f"the project archive is refused: the name {_shown(name)} is too long "
                       f"(at most {MAX_NAME_BYTES} bytes) or not valid")
    if name.startswith("/"):
        raise _refused(f"the project archive is refused: {_shown(name)} is an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _refused(f"the project archive is refused: {_shown(name)} leads out of the "
                       "project ('..')")
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
        raise _refused(f"the project archive is refused: a part of {_shown(name)} is longer "
                       "than 255 bytes")
    if not parts and member.isreg():
        raise _refused(f"the project archive is refused: a file has no name ({_shown(name)})")
    return parts


def _extract(tar: tarfile.TarFile, members: list[tuple[tarfile.TarInfo, tuple[str, ...]]],
             dest: Path) -> None:
    base = os.path.realpath(dest, strict=True)
    root = os.open(base, _DIR_FLAGS)
    try:
        for member, parts in members:
            try:
                if member.isdir():
                    os.close(_open_dirs(root, parts))
                    continue
                parent = _open_dirs(root, parts[:-1])
                try:
                    _inside(base, parts, member.name)
                    _write(tar, member, parent, parts[-1])
                finally:
                    os.close(parent)
            except OSError as exc:
                raise (storage_fault(exc) or _refused(
                    f"the project archive could not be unpacked: {_shown(member.name)}: "
                    f"{_reason(exc)}")) from exc
    finally:
        os.close(root)


def _open_dirs(root: int, parts: tuple[str, ...]) -> int:
    """The directory ``parts`` under ``root`` (made as needed), opened without following a
    link at any step; the caller closes it."""
    fd = os.dup(root)
    for part in parts:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _inside(base: str, parts: tuple[str, ...], name: str) -> None:
    """Refuse a file whose target is not inside ``base`` once every link on the way is
    resolved: its parent (made by then) must resolve strictly (an unresolvable path, e.g. one
    beyond PATH_MAX, raises), and the target itself must not be a link."""
    parent = os.path.join(base, *parts[:-1])
    real = os.path.realpath(parent, strict=True)
    if real != base and not real.startswith(base + os.sep):
        raise _refused(f"the project archive is refused: {_shown(name)} would be written "
                       "outside the project")
    if os.path.islink(os.path.join(real, parts[-1])):
        raise _refused(f"the project archive is refused: {_shown(name)} would be written "
                       "through a link")


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str) -> None:
    source = tar.extractfile(member)
    if source is None:  # not a regular file after all
        raise _refused(f"the project archive is refused: {_shown(member.name)} has no data")
    # rw for the owner, never setuid/setgid/sticky or writable by group and others
    mode = (member.mode & 0o755) | 0o600
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=parent)
    with os.fdopen(fd, "wb") as out, source:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise _refused(f"the project archive is refused: {_shown(member.name)} would be "
                           "written through a link")
        os.ftruncate(fd, 0)
        os.fchmod(fd, mode)
        shutil.copyfileobj(source, out, COPY_CHUNK)
        out.flush()
        with contextlib.suppress(OverflowError, ValueError, OSError):
            os.utime(fd, (member.mtime, member.mtime))


def _empty(dest: Path) -> None:
    """Remove what an unpacking left in ``dest`` (links are removed, never followed)."""
    try:
        entries = list(os.scandir(dest))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


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

    def has_run(self, uid: str, attempt: int) -> bool:
        return run_dir(self.data_dir, uid, attempt).is_dir()

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

    def pack_workspace(self, name: str) -> Path | None:
        self.uploads_dir().mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.uploads_dir(), suffix=".tar.gz")
        os.close(fd)
        if pack_workspace(self.data_dir, name, Path(path)):
            return Path(path)
        os.unlink(path)
        return None

    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def remove(self, job: Job) -> None:
        remove_job_files(self.data_dir, job)
