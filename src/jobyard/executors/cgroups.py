"""Control groups: one per attempt, enforcing its memory, CPU and pids limits and its GPUs.

:func:`detect` finds, once per server, where Jobyard may create cgroups (a :class:`Layout`):
cgroup v2 where the unified hierarchy carries the ``memory``, ``cpu`` and ``pids`` controllers,
else cgroup v1 with writable ``memory``, ``cpu``, ``pids`` and ``freezer`` hierarchies (``cpuacct``
and ``devices`` are used when present). Each hierarchy gets a ``jobyard`` parent below the
server's own cgroup, and every attempt a child named after its marker (:class:`Cgroup`).

A supervisor creates its attempt's cgroup, its job joins it before ``exec`` and the supervisor
removes it once every process is gone; the server kills, freezes and samples it by the paths in
the attempt's handle. Killing is atomic: ``cgroup.kill`` on v2, freeze-kill-thaw on v1 (no
process can fork between the listing and the kill). Stdlib only, like every module a supervisor
imports (see :mod:`jobyard.executors.launcher`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

V1_ROOT = "/sys/fs/cgroup"
V1_REQUIRED = ("memory", "cpu", "pids", "freezer")
V1_OPTIONAL = ("cpuacct", "devices")
V2_CONTROLLERS = ("memory", "cpu", "pids")
PARENT = "jobyard"
CPU_PERIOD_US = 100_000
FREEZE_TIMEOUT_S = 2.0
FREEZE_RETRY_S = 0.02
REMOVE_TIMEOUT_S = 1.0
# Where each memory figure is, by version.
_V1_FILES = {"usage": "memory.usage_in_bytes", "peak": "memory.max_usage_in_bytes",
             "limit": "memory.limit_in_bytes", "events": "memory.oom_control",
             "inactive": "total_inactive_file"}
_V2_FILES = {"usage": "memory.current", "peak": "memory.peak", "limit": "memory.max",
             "events": "memory.events", "inactive": "inactive_file"}


@dataclass(frozen=True)
class Layout:
    """Where attempts' cgroups go: a parent directory per v1 controller, or ``{"": dir}`` on v2."""

    version: int
    parents: dict[str, str]

    def cgroup(self, name: str) -> Cgroup:
        """The (not yet created) cgroup of an attempt called ``name``."""
        return Cgroup(self.version, {c: os.path.join(p, name) for c, p in self.parents.items()})

    def describe(self) -> str:
        where = sorted(set(self.parents.values()))
        return f"cgroup v{self.version} ({', '.join(where)})"


@dataclass(frozen=True)
class Cgroup:
    """One attempt's cgroup: its directory per controller (v1) or its one directory (v2)."""

    version: int
    dirs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "dirs": dict(self.dirs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cgroup:
        return cls(int(data["version"]), dict(data["dirs"]))

    # life ----------------------------------------------------------------------------------------
    def create(self, limits: dict[str, Any]) -> None:
        """Make the directories and set ``limits``: ``memory_bytes``, ``cpus``, ``pids`` (each
        optional) and ``deny_devices``, ``[[type, major, minor], ...]`` (v1's devices only)."""
        for path in self.dirs.values():
            with contextlib.suppress(FileExistsError):  # a relaunch after a crash mid-launch
                os.mkdir(path)
        memory, cpus, pids = limits.get("memory_bytes"), limits.get("cpus"), limits.get("pids")
        if self.version == 2:
            if memory:
                self._write("", "memory.max", memory)
                self._write("", "memory.swap.max", 0, optional=True)
            if cpus:
                self._write("", "cpu.max", f"{_quota_us(cpus)} {CPU_PERIOD_US}")
            if pids:
                self._write("", "pids.max", pids)
            return
        if memory:
            self._write("memory", "memory.limit_in_bytes", memory)
            # With swap accounting, RAM + swap too: over the limit is killed, not swapped out.
            self._write("memory", "memory.memsw.limit_in_bytes", memory, optional=True)
        if cpus:
            self._write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US)
            self._write("cpu", "cpu.cfs_quota_us", _quota_us(cpus))
        if pids:
            self._write("pids", "pids.max", pids)
        if "devices" in self.dirs:
            for kind, major, minor in limits.get("deny_devices") or ():
                self._write("devices", "devices.deny", f"{kind} {major}:{minor} rwm")

    def join(self, pid: int) -> None:
        """Move ``pid`` (a process not yet running the job) into the cgroup."""
        for key in self.dirs:
            self._write(key, "cgroup.procs", pid)

    def remove(self) -> bool:
        """Remove the (empty) cgroup; True once no directory of it is left. Processes that just
        exited may keep it busy a moment: retried until :data:`REMOVE_TIMEOUT_S`."""
        deadline = time.monotonic() + REMOVE_TIMEOUT_S
        left = list(self.dirs.values())
        while left:
            for path in list(left):
                try:
                    os.rmdir(path)
                    left.remove(path)
                except FileNotFoundError:
                    left.remove(path)
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        return False
            if left:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.005)
        return True

    def exists(self) -> bool:
        return os.path.isdir(self._primary())

    # processes -----------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """Every process in the cgroup (empty when it is gone)."""
        try:
            with open(os.path.join(self._primary(), "cgroup.procs")) as f:
                return [int(line) for line in f if line.strip()]
        except OSError:
            return []

    def kill(self) -> list[int]:
        """SIGKILL every process in the cgroup at once; returns the pids it held."""
        victims = self.pids()
        if not victims:
            return []
        if self.version == 2:
            self._write("", "cgroup.kill", 1)
            return victims
        frozen = self.freeze()  # nothing forks between the listing and the kill
        try:
            for _ in range(100):
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                victims.extend(p for p in pids if p not in victims)
                if frozen:
                    break  # the frozen list is complete; the kills land on thaw
        finally:
            if frozen:
                self.thaw()
        return victims

    def signal(self, sig: int, skip: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Send ``sig`` to every process in the cgroup but those in ``skip``; returns the pids
        it reached."""
        reached = []
        for pid in self.pids():
            if pid in skip:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                reached.append(pid)
        return reached

    def freeze(self) -> bool:
        """Freeze every process of the cgroup; True once frozen (within a deadline)."""
        if self.version == 2:
            return self._set_frozen("", "cgroup.freeze", "1", "cgroup.events", "frozen 1")
        if "freezer" not in self.dirs:
            return False
        return self._set_frozen("freezer", "freezer.state", "FROZEN", "freezer.state", "FROZEN")

    def thaw(self) -> None:
        if self.version == 2:
            self._write("", "cgroup.freeze", 0)
        elif "freezer" in self.dirs:
            self._write("freezer", "freezer.state", "THAWED")

    def frozen(self) -> bool:
        if self.version == 2:
            return "frozen 1" in self._read("", "cgroup.events", "")
        return self._read("freezer", "freezer.state", "").strip() == "FROZEN"

    # measurements --------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """CPU seconds, memory (working set: usage less inactive page cache), peak memory,
        memory limit and OOM kills, each where the kernel gives it."""
        v2 = self.version == 2
        mem = "" if v2 else "memory"
        names = _V2_FILES if v2 else _V1_FILES
        out: dict[str, Any] = {}
        if v2:
            usage_us = _keyed(self._read("", "cpu.stat")).get("usage_usec")
            out["cpu_seconds"] = None if usage_us is None else usage_us / 1e6
        else:
            usage_ns = _number(self._read("cpuacct", "cpuacct.usage"))
            out["cpu_seconds"] = None if usage_ns is None else usage_ns / 1e9
        inactive = _keyed(self._read(mem, "memory.stat")).get(names["inactive"], 0)
        out["oom_kills"] = _keyed(self._read(mem, names["events"])).get("oom_kill")
        usage = _number(self._read(mem, names["usage"]))
        out["memory_bytes"] = None if usage is None else max(0, usage - inactive)
        out["memory_peak_bytes"] = _number(self._read(mem, names["peak"]))
        limit = _number(self._read(mem, names["limit"]))
        out["memory_limit_bytes"] = limit if limit and limit < 1 << 62 else None  # not "no limit"
        return {k: v for k, v in out.items() if v is not None}

    # files ---------------------------------------------------------------------------------------
    def _primary(self) -> str:
        for key in ("", "freezer", "memory"):
            if key in self.dirs:
                return self.dirs[key]
        return next(iter(self.dirs.values()))

    def _write(self, key: str, name: str, value: object, optional: bool = False) -> None:
        path = os.path.join(self.dirs[key], name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if optional:
                return
            raise
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)

    def _read(self, key: str, name: str, default: str = "") -> str:
        if key not in self.dirs:
            return default
        try:
            with open(os.path.join(self.dirs[key], name)) as f:
                return f.read()
        except OSError:
            return default

    def _set_frozen(self, key: str, name: str, value: str, check: str, want: str) -> bool:
        deadline = time.monotonic() + FREEZE_TIMEOUT_S
        again = 0.0
        while True:
            now = time.monotonic()
            if now >= again:  # asked again: v1 retries only then the tasks it could not freeze
                try:
                    self._write(key, name, value)
                except OSError:
                    return False
                again = now + FREEZE_RETRY_S
            if want in self._read(key, check, ""):
                return True
            if now >= deadline or not self.exists():
                return False
            time.sleep(0.001)


def detect(mode: str = "auto", root: str = V1_ROOT) -> tuple[Layout | None, str]:
    """The layout this server may use, or None and why not. ``mode``: ``auto`` (v2 if usable,
    else v1), ``v1``, ``v2`` or ``off``."""
    if mode == "off":
        return None, "cgroups are turned off in the configuration (cgroups = off)"
    reasons = []
    if mode in ("auto", "v2"):
        layout, why = _detect_v2(root)
        if layout is not None or mode == "v2":
            return layout, why
        reasons.append(why)
    if mode in ("auto", "v1"):
        layout, why = _detect_v1(root)
        if layout is not None:
            return layout, why
        reasons.append(why)
    return None, "; ".join(reasons)


def own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller (``""`` for the v2 hierarchy)."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _detect_v1(root: str) -> tuple[Layout | None, str]:
    try:
        own = own_paths()
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup: {exc}"
    parents = {}
    for controller in V1_REQUIRED + V1_OPTIONAL:
        mount = os.path.join(root, controller)
        if controller not in own or not os.path.exists(os.path.join(mount, "cgroup.procs")):
            if controller in V1_REQUIRED:
                return None, f"no cgroup v1 {controller} hierarchy at {mount}"
            continue
        parent = os.path.join(mount + own[controller], PARENT)
        try:
            os.makedirs(parent, exist_ok=True)
            if not os.access(parent, os.W_OK | os.X_OK):  # another user's, from another server
                raise PermissionError(errno.EACCES, "Permission denied")
        except OSError as exc:
            if controller in V1_REQUIRED:
                return None, f"cannot create cgroups in {parent}: {exc.strerror}"
            continue
        parents[controller] = parent
    return Layout(1, parents), f"cgroup v1 under {parents['memory']} and its siblings"


def _detect_v2(root: str) -> tuple[Layout | None, str]:
    """v2 as a delegated subtree: the server's own processes move to a ``server`` leaf, so the
    cgroup above can enable the controllers for the ``jobyard`` parent beside it."""
    mount = root if os.path.exists(os.path.join(root, "cgroup.controllers")) else \
        os.path.join(root, "unified")
    try:
        with open(os.path.join(mount, "cgroup.controllers")) as f:
            available = f.read().split()
        own = own_paths().get("", "/")
    except OSError:
        return None, f"no cgroup v2 hierarchy at {root}"
    missing = [c for c in V2_CONTROLLERS if c not in available]
    if missing:
        return None, f"cgroup v2 at {mount} lacks the {', '.join(missing)} controller(s)"
    base = mount + own.rstrip("/")
    parent = os.path.join(base, PARENT)
    try:
        if own != "/":
            leaf = os.path.join(base, "server")
            os.makedirs(leaf, exist_ok=True)
            with open(os.path.join(base, "cgroup.procs")) as f:
                for pid in f.read().split():
                    with contextlib.suppress(ProcessLookupError), \
                            open(os.path.join(leaf, "cgroup.procs"), "w") as out:
                        out.write(pid)
        enable = " ".join(f"+{c}" for c in V2_CONTROLLERS)
        with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
            f.write(enable)
        os.makedirs(parent, exist_ok=True)
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write(enable)
    except OSError as exc:
        return None, f"cannot delegate cgroup v2 controllers under {base}: {exc.strerror}"
    return Layout(2, {"": parent}), f"cgroup v2 under {parent}"


def _quota_us(cpus: float) -> int:
    return max(1000, round(float(cpus) * CPU_PERIOD_US))


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
