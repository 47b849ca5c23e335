"""An in-memory executor for testing the daemon: no processes, the test decides every outcome.

    fake = FakeExecutor()
    handle = await fake.launch(spec)            # recorded in fake.launched
    fake.finish(spec.job_uid, exit_code=3)      # wait() now returns reason="exited", exit_code=3
    fake.fail_next_launch("no such command")    # the next launch raises LaunchError
    await fake.stop(handle, grace_s=5)          # recorded in fake.stopped; wait() -> "stopped"
    await fake.pause(handle)                    # fake.is_paused(handle); fake.resume(handle)

``FakeExecutor(auto_exit_code=0)`` finishes every job as soon as it is launched. To simulate a
server restart, give the same instance to the new daemon: its runs survive, like real processes
whose supervisors outlive the server; :meth:`FakeExecutor.lose` makes one vanish instead.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from dataclasses import dataclass, field

from jobyard.errors import LaunchError
from jobyard.executors.base import Executor, ExitStatus, Handle, LaunchSpec


@dataclass
class FakeRun:
    spec: LaunchSpec
    handle: Handle
    status: ExitStatus | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class FakeExecutor(Executor):
    """Executor double; see the module docstring."""

    def __init__(self, auto_exit_code: int | None = None, sigterm_obeyed: bool = True) -> None:
        self.auto_exit_code = auto_exit_code
        self.sigterm_obeyed = sigterm_obeyed  # shapes the cancel receipt stop() produces
        self.launched: list[LaunchSpec] = []
        self.stopped: list[tuple[Handle, float]] = []
        self.swept: list[str] = []
        self.runs: dict[str, FakeRun] = {}  # by run_dir
        self._failures: list[str] = []
        self._pids = itertools.count(10_000)

    # -- controls for tests ---------------------------------------------------------------

    def fail_next_launch(self, message: str = "fake launch failure") -> None:
        """Make the next launch raise LaunchError(message)."""
        self._failures.append(message)

    def finish(self, job_uid: str, exit_code: int = 0, signal: int | None = None) -> None:
        """End the latest attempt of ``job_uid`` as if its process exited."""
        code = None if signal is not None else exit_code
        self._end(self.latest(job_uid), ExitStatus("exited", code, signal, time.time()))

    def lose(self, job_uid: str) -> None:
        """End the latest attempt of ``job_uid`` with no exit status (a vanished supervisor)."""
        self._end(self.latest(job_uid), ExitStatus("lost", message="fake: supervisor vanished"))

    def latest(self, job_uid: str) -> FakeRun:
        """The most recently launched attempt of ``job_uid``."""
        for run in reversed(self.runs.values()):
            if run.spec.job_uid == job_uid:
                return run
        raise KeyError(job_uid)

    @property
    def running(self) -> list[Handle]:
        """Handles of attempts that have not ended."""
        return [run.handle for run in self.runs.values() if run.status is None]

    # -- Executor -------------------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> Handle:
        self.launched.append(spec)
        if self._failures:
            raise LaunchError(self._failures.pop(0))
        pid, now = next(self._pids), time.time()
        handle = Handle(spec.run_dir, pid, now, pid + 1, now, spec.marker, {"fake": True})
        self.runs[spec.run_dir] = run = FakeRun(spec, handle)
        if self.auto_exit_code is not None:
            self._end(run, ExitStatus("exited", self.auto_exit_code, None, time.time()))
        return handle

    async def wait(self, handle: Handle) -> ExitStatus:
        run = self.runs.get(handle.run_dir)
        if run is None:
            return ExitStatus("lost", message="fake: unknown handle")
        await run.done.wait()
        assert run.status is not None
        return run.status

    async def stop(self, handle: Handle, grace_s: float) -> None:
        self.stopped.append((handle, grace_s))
        run = self.runs.get(handle.run_dir)
        if run is None or run.status is not None:
            return
        receipt = {
            "signals": ["SIGTERM"] if self.sigterm_obeyed else ["SIGTERM", "SIGKILL"],
            "sigterm_obeyed": self.sigterm_obeyed,
            "time_to_stop_s": 0.0 if self.sigterm_obeyed else grace_s,
            "processes_killed": [] if self.sigterm_obeyed else [handle.pid],
            "processes_signaled": 1,
        }
        signal = 15 if self.sigterm_obeyed else 9
        self._end(run, ExitStatus("stopped", None, signal, time.time(), receipt))

    def adopt(self, handle: Handle) -> bool:
        run = self.runs.get(handle.run_dir)
        return run is not None and run.status is None

    def recover(self, run_dir: str) -> tuple[Handle | None, ExitStatus | None]:
        run = self.runs.get(run_dir)
        return (run.handle, run.status) if run else (None, None)

    def sweep(self, marker: str, handle: Handle | None = None) -> list[int]:
        self.swept.append(marker)
        victims = [r for r in self.runs.values() if r.spec.marker == marker and r.status is None]
        for run in victims:
            self._end(run, ExitStatus("exited", None, 9, time.time()))
        return [run.handle.pid for run in victims]

    @staticmethod
    def _end(run: FakeRun, status: ExitStatus) -> None:
        if run.status is None:
            run.status = status
            run.done.set()

    # -- pause and resume (appended) -------------------------------------------------------

    # Made on first use (cached_property), so that __init__ stays as it was.
    @functools.cached_property
    def paused(self) -> set[str]:
        """Run dirs of the attempts paused now."""
        return set()

    @functools.cached_property
    def pauses(self) -> list[tuple[str, Handle]]:
        """Every call of pause/resume, in order: ``("pause", handle)``, ``("resume", handle)``."""
        return []

    def is_paused(self, handle: Handle) -> bool:
        return handle.run_dir in self.paused

    async def pause(self, handle: Handle) -> None:
        self.pauses.append(("pause", handle))
        run = self.runs.get(handle.run_dir)
        if run is not None and run.status is None:
            self.paused.add(handle.run_dir)

    async def resume(self, handle: Handle) -> None:
        self.pauses.append(("resume", handle))
        self.paused.discard(handle.run_dir)
