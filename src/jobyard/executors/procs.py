"""Process helpers for the launcher and supervisors, read straight from /proc.

Process identity (start time and state), the descendants of a process, and signalling through
a pidfd so a recycled pid is never hit. Deliberately stdlib only, without ``psutil``: see
:mod:`jobyard.executors.launcher` for why nothing that imports ``threading`` may be loaded there.
"""

from __future__ import annotations

import os
import signal

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_boot_time: float | None = None


def _stat(pid: int | str) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat from the state on (index 0: state, 1: ppid, 19: start)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()


def boot_time() -> float:
    """System boot time in epoch seconds (/proc/stat ``btime``, as psutil reads it); cached,
    as /proc/stat is costly to generate."""
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            _boot_time = float(next(x for x in f if x.startswith(b"btime")).split()[1])
    return _boot_time


def proc_ident(pid: int) -> tuple[float, str] | None:
    """``(start time in epoch seconds, state letter)`` of ``pid`` as psutil computes the start
    time, or None if there is no such process. Zombies ("Z") are reported, not hidden."""
    fields = _stat(pid)
    if fields is None:
        return None
    return int(fields[19]) / _CLK_TCK + boot_time(), fields[0].decode()


def descendants(root: int) -> dict[int, bytes]:
    """Start time (raw /proc field) of every live descendant of ``root``, by pid."""
    children: dict[bytes, list[bytes]] = {}
    starts: dict[bytes, bytes] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(name)) and fields[0] != b"Z":
            children.setdefault(fields[1], []).append(name.encode())
            starts[name.encode()] = fields[19]
    found: dict[int, bytes] = {}
    todo = [str(root).encode()]
    while todo:
        for child in children.get(todo.pop(), ()):
            found[int(child)] = starts[child]
            todo.append(child)
    return found


def signal_if_same(pid: int, start: bytes, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the live process that started at ``start``."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        fields = _stat(pid)  # checked after opening the pidfd, so the pid cannot be recycled
        if not fields or fields[19] != start or fields[0] == b"Z":
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
