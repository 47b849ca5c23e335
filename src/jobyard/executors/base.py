"""The executor seam: how the daemon starts, watches and stops a job's processes.

Contract (shaped like httpx's transport: one small base class, a fake beside it):

* :meth:`Executor.launch` starts one attempt of a job and returns a :class:`Handle` as soon as
  the job's first process exists (or raises :class:`~jobyard.errors.LaunchError`). The handle is
  JSON-safe; the daemon persists it so another server process can adopt the attempt later.
* :meth:`Executor.wait` returns the attempt's :class:`ExitStatus` once *no process of the
  attempt is left* and its log is complete on disk.
* :meth:`Executor.stop` asks the attempt to stop: SIGTERM to every process of the job,
  ``grace_s`` seconds, then SIGKILL. It returns at once; ``wait`` then reports the outcome with
  a cancel receipt.
* :meth:`Executor.adopt` tells, after a server restart, whether a persisted handle still has live
  processes; :meth:`Executor.recover` reads the exit status an attempt left behind.
* :meth:`Executor.sweep` kills any process still left of the attempt (a last resort
  for processes that outlived their supervisor).
* :meth:`Executor.pause` stops every process of the job where it stands (SIGSTOP, or a cgroup
  freezer) and returns once none of them runs; the attempt keeps its resources, and whatever
  watches it (``wait``, the log) keeps working. :meth:`Executor.resume` lets them run on. Both
  are idempotent and harmless on an attempt that has ended; a paused attempt stays paused across
  a server restart (``adopt`` finds it so). ``stop`` of a paused attempt is followed by
  ``resume``, so that its processes see the SIGTERM (a SIGKILL needs no resume).
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    job_uid: str
    attempt: int
    argv: list[str]  # a shell command arrives here as ["/bin/sh", "-c", cmd]
    env: dict[str, str]  # the job's complete environment
    cwd: str | None
    run_dir: str  # per-attempt directory: log, supervisor and exit-status files
    log_cap_bytes: int
    grace_s: float
    marker: str  # value of JOBYARD_JOB_MARKER in env, unique per attempt
    # Directories the job writes (its outputs, working dir, home): created before it starts and,
    # with an identity, given to it. shared_dirs: its org's (volumes), given to the org's group.
    dirs: tuple[str, ...] = ()
    shared_dirs: tuple[str, ...] = ()
    identity: dict[str, Any] | None = None  # {"uid", "gid", "home"}: None runs as the server
    # The server's files the job must not see (its data dir, a store or config file outside
    # it), hidden where the executor can when the job runs as the server's user; inside them,
    # what it needs besides dirs and shared_dirs (``visible``: the reporting client).
    hidden: tuple[str, ...] = ()
    visible: tuple[str, ...] = ()
    # Enforced where the executor can (cgroups): memory_bytes, cpus, pids (each optional).
    limits: dict[str, Any] = field(default_factory=dict)
    gpus: tuple[int, ...] = ()  # the GPUs assigned: the only ones the job may open


@dataclass(frozen=True, slots=True)
class Handle:
    run_dir: str
    pid: int  # the job's main process
    pid_ctime: float
    supervisor_pid: int | None = None
    supervisor_ctime: float | None = None
    marker: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Handle:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How an attempt ended.

    ``reason`` is ``"exited"`` (ran to its end, see ``exit_code``/``signal``), ``"stopped"``
    (ended by :meth:`Executor.stop`; ``receipt`` says how), ``"launch_failed"`` (the command
    could not be started) or ``"lost"`` (no exit status could be found).
    """

    reason: str
    exit_code: int | None = None
    signal: int | None = None
    ended_at: float | None = None
    receipt: dict[str, Any] | None = None
    message: str | None = None
    cpu_seconds: float | None = None  # CPU time of all the job's processes, when known
    # From the attempt's cgroup, when it had one: its memory peak and limit, and how many of
    # its processes the kernel killed for going over that limit.
    memory_peak_bytes: int | None = None
    memory_limit_bytes: int | None = None
    oom_kills: int | None = None


class Executor(abc.ABC):
    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare resources (helper processes, connections)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release them. Running jobs are *not* stopped: they are adopted after a restart."""

    @abc.abstractmethod
    async def launch(self, spec: LaunchSpec) -> Handle: ...

    @abc.abstractmethod
    async def wait(self, handle: Handle) -> ExitStatus: ...

    @abc.abstractmethod
    async def stop(self, handle: Handle, grace_s: float) -> None: ...

    @abc.abstractmethod
    def adopt(self, handle: Handle) -> bool: ...

    @abc.abstractmethod
    def recover(self, run_dir: str) -> tuple[Handle | None, ExitStatus | None]:
        """What an attempt left in ``run_dir``: its handle (if it started) and exit status."""

    @abc.abstractmethod
    def sweep(self, marker: str, handle: Handle | None = None) -> list[int]:
        """Kill what is left of the attempt ``marker`` names (``handle``: its handle, when
        known: it may say where its processes are)."""

    def enforcement(self) -> dict[str, Any]:
        """How this executor confines jobs: ``isolation`` (the OS identity jobs run as:
        ``"none"`` when they run as the server's user), ``cgroups`` (``"v1"``, ``"v2"`` or
        ``"none"``: are resources enforced) and why (``cgroups_detail``); ``namespaces``
        (``"on"``: jobs of the server's user see none of its files nor other jobs' processes)
        and why (``namespaces_detail``)."""
        return {"isolation": "none", "cgroups": "none",
                "cgroups_detail": "this executor does not enforce limits",
                "namespaces": "none", "namespaces_detail": "this executor does not use them"}

    @abc.abstractmethod
    async def pause(self, handle: Handle) -> None:
        """Stop every process of the attempt (not what watches it) until :meth:`resume`."""

    @abc.abstractmethod
    async def resume(self, handle: Handle) -> None:
        """Let the processes :meth:`pause` stopped run on."""
