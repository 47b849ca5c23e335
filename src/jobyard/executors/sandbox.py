"""A job's own view of the machine when the server is not root: user, mount and PID namespaces.

Not as root, jobs run as the server's own user, so file modes cannot keep them from the
server's files. Where unprivileged user namespaces work, each job starts in new user, mount
and PID namespaces (its uid mapped to itself: it keeps its identity and, once it has exec'ed,
holds no capability): the data dir, and any server file outside it (a SQLite store, the config
file), is covered by an empty read-only tmpfs (a file by an empty one) with only the job's own
folders bound back at their paths, and ``/proc`` is its PID namespace's, so it sees and can
signal only its own processes. The covers cannot be lifted from inside: the job holds no
capability in its namespace, and mounts copied into any namespace it makes are locked.

This keeps the store, the server's secret and other jobs' logs, outputs and tokens from a
job, but orgs are still not a boundary: jobs share the server's uid, ``/tmp`` and its home.

:func:`enter` is called in a forked child; its next child is pid 1 of the job's namespace,
which runs :func:`init`. Stdlib only, like the supervisor that calls it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
COVER_OPTIONS = b"size=64k,mode=0755"  # holds only the folders the job's own are bound onto
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class View:
    """What a job must not see (``hide``: folders and files of the server) and, inside those,
    the folders it keeps (``show``: its own, at their paths)."""

    hide: tuple[str, ...]
    show: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"hide": list(self.hide), "show": list(self.show)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> View:
        return cls(tuple(data["hide"]), tuple(data.get("show") or ()))


def enter(view: View) -> None:
    """In a forked child, before ``exec``: new user, mount and PID namespaces with ``view``
    mounted. The caller stays in the server's PID namespace; its next child is pid 1 of the
    new one (and must run :func:`init`)."""
    uid, gid = os.getuid(), os.getgid()
    hidden = [os.path.realpath(p) for p in view.hide if os.path.lexists(p)]
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the server
    # Opened in the new namespace before they are covered, and bound back from these.
    shown: list[tuple[str, int]] = []
    for path in sorted({os.path.realpath(p) for p in view.show}, key=len):
        if any(_inside(path, h) for h in hidden) and not any(_inside(path, p) for p, _ in shown):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                shown.append((path, os.open(path, os.O_PATH | os.O_DIRECTORY)))
    covers: list[str] = []
    for path in sorted(hidden, key=len):
        if any(_inside(path, c) for c in covers):
            continue
        if os.path.isdir(path):
            _mount(b"jobyard", path, b"tmpfs", MS_NOSUID | MS_NODEV, COVER_OPTIONS)
            covers.append(path)
        else:
            _mount(b"/dev/null", path, None, MS_BIND)
    for path, fd in shown:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}".encode(), path, None, MS_BIND | MS_REC)
        os.close(fd)
    for path in covers:
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def init(start: Callable[[], NoReturn], status_w: int, grace_s: float) -> NoReturn:
    """Pid 1 of a job's namespace: mount its ``/proc``, fork the job (``start`` sets it up
    and execs it), close every descriptor but ``status_w`` (a pipe held open here would hide
    the job's exec, or its supervisor's report, from their readers), reap every process, and
    write the job's wait status to ``status_w`` when it ends. Then SIGTERM what it left
    behind, wait ``grace_s`` at most, and exit: the kernel kills whatever is still there.

    Signals the supervisor sends land on the job's processes; this one ignores them (pid 1
    has no default action) except SIGKILL, which ends the whole namespace at once.
    """
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    os.setsid()
    _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    job = os.fork()
    if job == 0:
        start()
    os.closerange(3, status_w)
    os.closerange(status_w + 1, os.sysconf("SC_OPEN_MAX"))
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == job:
            break
    with contextlib.suppress(OSError):
        os.write(status_w, str(status).encode())
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)  # in a PID namespace: all of it but this process
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.005)
        except ChildProcessError:
            break
    os._exit(0)


def probe(python: str = sys.executable) -> str | None:
    """Why jobs cannot get their own namespaces here (None: they can), tried in a child
    interpreter (this module run as a script)."""
    import subprocess  # not at the top: supervisors import this module, and must stay light

    try:
        done = subprocess.run([python, "-m", __name__], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot try namespaces: {exc}"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def _try() -> int:
    """The probe's body: a child enters a view of a scratch folder, and its child, pid 1 of
    the new namespace, mounts its own ``/proc``. Returns the exit code (0: it all worked)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        mine = os.path.join(scratch, "mine")
        os.mkdir(mine)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                enter(View((scratch,), (mine,)))
                if os.listdir(scratch) != ["mine"]:
                    raise OSError(0, "the view did not hide its folder")
                first = os.fork()
                if first == 0:
                    _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    os._exit(0 if os.getpid() == 1 else 1)
                code = os.waitstatus_to_exitcode(os.waitpid(first, 0)[1])
            except OSError as exc:
                print(f"unprivileged user namespaces do not work here: {exc}", file=sys.stderr)
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _mount(source: bytes | None, target: str, fstype: bytes | None, flags: int,
           data: bytes | None = None) -> None:
    _check(_libc.mount(source, target.encode(), fstype, flags, data), f"mount {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


if __name__ == "__main__":
    sys.exit(_try())
