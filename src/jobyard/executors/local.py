"""Run jobs as local processes, each under its own supervisor.

One launcher process (see :mod:`jobyard.executors.launcher`) forks one supervisor per job, so a
launch costs a fork instead of a Python start-up. Supervisors own their jobs and write everything
that matters (``supervisor.json``, ``log``, ``exit.json``) into the run directory, so a job outlives
the server that started it and a restarted server adopts it from those files.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import json
import logging
import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import jobyard
from jobyard.errors import LaunchError
from jobyard.executors.base import Executor, ExitStatus, Handle, LaunchSpec
from jobyard.executors.cgroups import Cgroup, Layout, detect
from jobyard.executors.identity import active as active_identity
from jobyard.executors.procs import descendants, proc_ident, signal_if_same
from jobyard.executors.runfiles import read_json, write_json_atomic
from jobyard.executors.sandbox import View, probe

log = logging.getLogger(__name__)
CTIME_TOLERANCE_S = 0.05  # start times have clock-tick (10 ms) resolution
SWEEP_TIMEOUT_S = 5.0
_HANDLE_FIELDS = set(Handle.__dataclass_fields__)
_SPEC_FIELDS = tuple(LaunchSpec.__dataclass_fields__)
_STATUS_FIELDS = set(ExitStatus.__dataclass_fields__)


def _same_process(pid: int | None, ctime: float | None, zombie_ok: bool = False) -> bool:
    ident = proc_ident(pid) if pid else None
    if ident is None or (ident[1] == "Z" and not zombie_ok):
        return False
    return ctime is None or abs(ident[0] - ctime) <= CTIME_TOLERANCE_S


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _handle(data: dict[str, Any]) -> Handle:
    return Handle.from_dict({k: v for k, v in data.items() if k in _HANDLE_FIELDS})


def _status(data: dict[str, Any]) -> ExitStatus:
    return ExitStatus(**{k: v for k, v in data.items() if k in _STATUS_FIELDS})


def _spare_holding(layout: Layout, marker: str) -> Cgroup | None:
    """The spare cgroup (see ``Parked``) whose process became the attempt ``marker``: only
    spares are searched, by their few processes' environments."""
    primary = "freezer" if "freezer" in layout.parents else next(iter(layout.parents))
    for path in glob.glob(os.path.join(layout.parents[primary], "spare-*")):
        spare = layout.cgroup(os.path.basename(path))
        for pid in spare.pids():
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).environ().get("JOBYARD_JOB_MARKER") == marker:
                    return spare
    return None


def _kill_cgroup(cgroup: Cgroup) -> list[int]:
    """Kill every process of ``cgroup``, wait until they are gone, and remove it."""
    if not cgroup.exists():
        return []
    killed = set(cgroup.kill())
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while (left := cgroup.pids()) and time.monotonic() < deadline:
        killed.update(cgroup.kill())
        time.sleep(0.01)
    if not left:
        cgroup.remove()
    return sorted(killed)


def _open_pidfd(pid: int | None, ctime: float | None, zombie_ok: bool) -> int | None:
    """A pidfd for ``pid`` if it is still the process started at ``ctime``."""
    try:
        fd = os.pidfd_open(pid) if pid else None
    except ProcessLookupError:
        return None
    if fd is not None and not _same_process(pid, ctime, zombie_ok):
        os.close(fd)  # checked after opening, so the fd cannot refer to a recycled pid
        return None
    return fd


@dataclass
class _Launcher:
    proc: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    gone: bool = False


class LocalExecutor(Executor):
    """Executes jobs on this machine; see the module docstring.

    ``cgroups`` (``auto``, ``v1``, ``v2``, ``off``) says where each attempt gets a cgroup that
    enforces its limits (:mod:`jobyard.executors.cgroups`); ``pids_max`` caps the processes of
    one attempt; ``gpu_devices`` is the glob of the GPU device files (``/dev/nvidia<index>``):
    an attempt may open only those of its own GPUs. ``identity`` is the configured
    ``job_identity`` (it only reports it: each launch spec carries the job's identity).
    ``namespaces`` (``auto``, ``off``): whether a job that runs as the server's user (no
    identity of its own) gets its own user, mount and PID namespaces, where they work, with
    the spec's ``hidden`` files out of its sight (:mod:`jobyard.executors.sandbox`).
    """

    def __init__(self, python: str = sys.executable, cgroups: str = "auto",
                 pids_max: int | None = None, gpu_devices: str = "/dev/nvidia[0-9]*",
                 identity: str = "org", namespaces: str = "auto") -> None:
        self._python = python
        self._launcher: _Launcher | None = None
        self._start_lock: asyncio.Lock | None = None
        self._ids = itertools.count(1)
        self._cgroups_mode = cgroups
        self._layout: Layout | None = None
        self._layout_reason: str | None = None  # None: not detected yet
        self._pids_max = pids_max
        self._gpu_devices = gpu_devices
        self._identity = identity
        self._namespaces_mode = namespaces
        self._namespaces_reason: str | None = None  # None: not tried yet; "": they work

    @property
    def cgroups(self) -> tuple[Layout | None, str]:
        """Where attempts' cgroups go (None: nowhere) and why: detected on first use."""
        if self._layout_reason is None:
            self._layout, self._layout_reason = detect(self._cgroups_mode)
            if self._layout is None:
                log.warning("jobs run without enforced limits: %s", self._layout_reason)
        return self._layout, self._layout_reason

    @property
    def launcher_pid(self) -> int | None:
        """Pid of the launcher process, if one is running."""
        return self._launcher.proc.pid if self._launcher and not self._launcher.gone else None

    @property
    def namespaces(self) -> tuple[bool, str]:
        """Whether jobs without an identity get their own namespaces, and why: tried on first
        use (not as root: root gives jobs their tenants' identities instead)."""
        if self._namespaces_reason is None:
            if self._namespaces_mode == "off":
                self._namespaces_reason = "namespaces = off"
            elif os.geteuid() == 0:
                self._namespaces_reason = "the server is root: jobs run as their tenants' users"
            else:
                self._namespaces_reason = probe(self._python) or ""
                if self._namespaces_reason:
                    log.warning("jobs see what the server sees: %s", self._namespaces_reason)
        return not self._namespaces_reason, self._namespaces_reason or (
            "each job in its own user, mount and PID namespaces")

    async def start(self) -> None:
        await asyncio.to_thread(lambda: (self.cgroups, self.namespaces))
        await self._ensure_launcher()

    async def close(self) -> None:
        """Stop the launcher (it exits on EOF); running jobs and their supervisors carry on."""
        launcher, self._launcher = self._launcher, None
        if launcher is None:
            return
        if launcher.proc.stdin is not None:
            launcher.proc.stdin.close()
        try:
            await asyncio.wait_for(launcher.proc.wait(), 5)
        except TimeoutError:
            launcher.proc.kill()
            await launcher.proc.wait()
        if launcher.reader is not None:
            await launcher.reader

    async def launch(self, spec: LaunchSpec) -> Handle:
        # Shallow on purpose: asdict() deep-copies the environment of every job.
        request = {"id": next(self._ids), **{f: getattr(spec, f) for f in _SPEC_FIELDS}}
        layout = self.cgroups[0]
        if layout is not None:
            cgroup = layout.cgroup(spec.marker)
            denied = self._denied_devices(spec.gpus)
            if not denied:  # no device file to keep from it: one controller less to enter
                cgroup = Cgroup(cgroup.version, {k: v for k, v in cgroup.dirs.items()
                                                 if k != "devices"})
            request["cgroup"] = cgroup.to_dict()
            request["limits"] = {**spec.limits, "pids": self._pids_max, "deny_devices": denied}
        if spec.identity is None and spec.hidden and self.namespaces[0]:
            request["view"] = View(spec.hidden,
                                   (*spec.dirs, *spec.shared_dirs, *spec.visible)).to_dict()
        line = json.dumps(request).encode() + b"\n"
        for attempt in range(2):
            launcher = await self._ensure_launcher()
            future = asyncio.get_running_loop().create_future()
            launcher.pending[request["id"]] = future
            try:
                assert launcher.proc.stdin is not None
                launcher.proc.stdin.write(line)
                await launcher.proc.stdin.drain()
                break
            except ConnectionError:
                # The launcher died before reading this request: nothing started, try a new one.
                launcher.pending.pop(request["id"], None)
                launcher.gone = True
                if attempt:
                    raise LaunchError("cannot reach the job launcher") from None
        try:
            reply = await future
        except LaunchError:
            # The launcher died mid-launch: a job may have started without our knowing.
            await asyncio.to_thread(self.sweep, spec.marker)
            raise
        if not reply.pop("ok"):
            raise LaunchError(reply["error"], {"job_uid": spec.job_uid, "attempt": spec.attempt})
        return _handle(reply)

    async def wait(self, handle: Handle) -> ExitStatus:
        exit_path = os.path.join(handle.run_dir, "exit.json")
        if not os.path.exists(exit_path):
            pid, ctime = self._supervisor(handle)
            await self._wait_exit(pid, ctime)
        data = read_json(exit_path)
        if data is None:
            return ExitStatus(reason="lost", message="the supervisor ended without an exit status")
        return _status(data)

    async def stop(self, handle: Handle, grace_s: float) -> None:
        with contextlib.suppress(OSError):  # the grace to use; the supervisor reads it on SIGTERM
            write_json_atomic(os.path.join(handle.run_dir, "stop.json"), {"grace_s": grace_s})
        fd = _open_pidfd(*self._supervisor(handle), zombie_ok=False)
        if fd is not None:
            try:
                signal.pidfd_send_signal(fd, signal.SIGTERM)
                return
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)
        if not os.path.exists(os.path.join(handle.run_dir, "exit.json")):
            await asyncio.to_thread(self.sweep, handle.marker)  # the supervisor is gone

    def adopt(self, handle: Handle) -> bool:
        return _same_process(*self._supervisor(handle))

    def recover(self, run_dir: str) -> tuple[Handle | None, ExitStatus | None]:
        sup = read_json(os.path.join(run_dir, "supervisor.json"))
        ex = read_json(os.path.join(run_dir, "exit.json"))
        return (_handle(sup) if sup else None), (_status(ex) if ex else None)

    def sweep(self, marker: str, handle: Handle | None = None) -> list[int]:
        """SIGKILL every process of the attempt: its whole cgroup where it has one (the
        handle's; without a handle, the one named by the marker or a spare that holds it), else
        (it started without one) every process whose environment carries
        ``JOBYARD_JOB_MARKER=<marker>``."""
        if not marker:
            return []
        if handle is not None and handle.extra.get("cgroup"):
            return _kill_cgroup(Cgroup.from_dict(handle.extra["cgroup"]))
        layout = self.cgroups[0]
        if layout is not None and handle is None:
            named = layout.cgroup(marker)
            held = named if named.exists() else _spare_holding(layout, marker)
            if held is not None:
                return _kill_cgroup(held)
        # No cgroup: an attempt started without one (cgroups were off then), or none held it.
        killed: dict[int, psutil.Process] = {}
        me = os.getpid()
        for _ in range(3):  # again, for anything forked while we were killing
            found = []
            for pid in psutil.pids():
                try:
                    # Not process_iter(): its cached objects refuse kill() on recycled pids.
                    proc = psutil.Process(pid)
                    if pid != me and proc.environ().get("JOBYARD_JOB_MARKER") == marker:
                        proc.kill()
                        found.append(proc)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            if not found:
                break
            killed.update((p.pid, p) for p in found)
            deadline = time.monotonic() + SWEEP_TIMEOUT_S
            while (found := [p for p in found if _alive(p)]) and time.monotonic() < deadline:
                time.sleep(0.01)  # zombies count as gone: their reaper may be slow
        return sorted(killed)

    def enforcement(self) -> dict[str, Any]:
        layout, reason = self.cgroups
        isolated, why = self.namespaces
        return {"isolation": active_identity(self._identity),
                "cgroups": f"v{layout.version}" if layout else "none", "cgroups_detail": reason,
                "namespaces": "on" if isolated else "none", "namespaces_detail": why}

    def _denied_devices(self, gpus: tuple[int, ...]) -> list[tuple[str, int, int]]:
        """The GPU device files an attempt with ``gpus`` may not open, as (type, major, minor)."""
        denied = []
        for path in glob.glob(self._gpu_devices):
            index = "".join(ch for ch in os.path.basename(path) if ch.isdigit())
            if not index or int(index) in gpus:
                continue
            with contextlib.suppress(OSError):
                st = os.stat(path)
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                denied.append((kind, os.major(st.st_rdev), os.minor(st.st_rdev)))
        return denied

    @staticmethod
    def _supervisor(handle: Handle) -> tuple[int, float | None]:
        if handle.supervisor_pid:
            return handle.supervisor_pid, handle.supervisor_ctime
        return handle.pid, handle.pid_ctime

    async def _wait_exit(self, pid: int, ctime: float | None) -> None:
        try:
            fd = _open_pidfd(pid, ctime, zombie_ok=True)
        except OSError:  # no pidfd support (Linux < 5.3): poll
            while _same_process(pid, ctime):
                await asyncio.sleep(0.05)
            return
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    async def _ensure_launcher(self) -> _Launcher:
        current = self._launcher
        if current is not None and not current.gone and current.proc.returncode is None:
            return current
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            current = self._launcher
            if current is None or current.gone or current.proc.returncode is not None:
                current = self._launcher = await self._spawn_launcher()
        return current

    async def _spawn_launcher(self) -> _Launcher:
        env = dict(os.environ)
        # Let the launcher import jobyard even when the server runs from a source tree.
        root = str(Path(jobyard.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        proc = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "jobyard.executors.launcher",
            "launcher",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=1 << 20,
        )
        launcher = _Launcher(proc)
        ready = launcher.pending[0] = asyncio.get_running_loop().create_future()
        launcher.reader = asyncio.create_task(self._read_replies(launcher))
        try:
            await asyncio.wait_for(ready, 30)
        except (LaunchError, TimeoutError) as exc:
            proc.kill()
            raise LaunchError(f"the job launcher did not start: {exc}") from None
        return launcher

    @staticmethod
    async def _read_replies(launcher: _Launcher) -> None:
        assert launcher.proc.stdout is not None
        try:
            while line := await launcher.proc.stdout.readline():
                reply = json.loads(line)
                future = launcher.pending.pop(reply.pop("id"), None)
                if future is not None and not future.done():
                    future.set_result(reply)
        finally:
            launcher.gone = True
            for future in launcher.pending.values():
                if not future.done():
                    future.set_exception(LaunchError("the job launcher exited during the launch"))
            launcher.pending.clear()
            if launcher.proc.stdin is not None:
                launcher.proc.stdin.close()
            await launcher.proc.wait()


    # pause and resume (issue #12): signals here; a cgroup freezer may take their place where
    # the handle carries a cgroup. The supervisor itself is never stopped: it must keep
    # draining the job's output and answering a stop.
    async def pause(self, handle: Handle) -> None:
        """Freeze the attempt's cgroup (returns once it is frozen), or, without one, SIGSTOP
        every process of the job (all descendants of its supervisor)."""
        if cgroup := handle.extra.get("cgroup"):
            await asyncio.to_thread(Cgroup.from_dict(cgroup).freeze)
            return
        pid, ctime = self._supervisor(handle)
        if handle.supervisor_pid and _same_process(pid, ctime):
            await asyncio.to_thread(stop_descendants, pid)

    async def resume(self, handle: Handle) -> None:
        """Thaw the attempt's cgroup, or SIGCONT every process of the job."""
        if cgroup := handle.extra.get("cgroup"):
            with contextlib.suppress(FileNotFoundError):  # ended meanwhile: nothing to thaw
                await asyncio.to_thread(Cgroup.from_dict(cgroup).thaw)
            return
        pid, ctime = self._supervisor(handle)
        if handle.supervisor_pid and _same_process(pid, ctime):
            await asyncio.to_thread(continue_descendants, pid)


PAUSE_TIMEOUT_S = 5.0  # a process in uninterruptible sleep stops only when it leaves it
PAUSE_POLL_S = 0.002
_STOPPED = ("T", "t")  # stopped by a signal; stopped under a tracer


def stop_descendants(root: int, timeout: float = PAUSE_TIMEOUT_S) -> list[int]:
    """SIGSTOP every descendant of ``root`` (not ``root``), scanning again until a scan finds
    every one of them stopped: a process may fork between a scan and its SIGSTOP, and a SIGSTOP
    takes effect only when its process next runs. Returns the pids stopped."""
    sent: set[tuple[int, bytes]] = set()
    deadline = time.monotonic() + timeout
    while True:
        # A process in uninterruptible sleep that has its SIGSTOP pending runs no instruction
        # of its own before it stops (e.g. the parent of a vfork() whose child was stopped
        # before its exec: it waits for that child for as long as the child is stopped).
        running = [(pid, start) for pid, start in descendants(root).items()
                   if (state := _state(pid)) not in _STOPPED
                   and not (state == "D" and (pid, start) in sent)]
        if not running:
            break
        for pid, start in running:
            if (pid, start) not in sent and signal_if_same(pid, start, signal.SIGSTOP):
                sent.add((pid, start))
        if time.monotonic() >= deadline:
            break
        time.sleep(PAUSE_POLL_S)
    return sorted(pid for pid, _ in sent)


def continue_descendants(root: int) -> list[int]:
    """SIGCONT every descendant of ``root`` (a stopped process cannot fork: one scan finds all
    of them). Returns the pids signalled."""
    return sorted(pid for pid, start in descendants(root).items()
                  if signal_if_same(pid, start, signal.SIGCONT))


def _state(pid: int) -> str | None:
    ident = proc_ident(pid)
    return ident[1] if ident else None
