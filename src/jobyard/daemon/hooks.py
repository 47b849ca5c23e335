"""Extension points around an attempt, for telemetry, outputs and the like: the whole of the
daemon a plug-in (``daemon/plugins/``) may know.

The daemon calls every registered hook, in order; each method has a no-op default, so a hook
overrides only what it needs. Hooks must not raise for a job's sake: an exception is logged and
the attempt goes on.

A plug-in that must act on an attempt (the resource sampler stops jobs over budget) is given a
:class:`Stopper` by its constructor; it never sees the daemon itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from jobyard.core.models import Job
from jobyard.executors.base import ExitStatus, Handle


class AttemptHook:
    """One plug-in of the daemon; override only the methods needed."""

    async def prepare(self, job: Job) -> None:
        """Before the attempt is launched (raise LaunchError to fail it)."""

    def env(self, job: Job, run_dir: Path) -> dict[str, str]:
        """Extra environment for the attempt about to launch."""
        return {}

    def shared_dirs(self, job: Job) -> list[str]:
        """Directories of the job's org (volumes) the attempt about to launch must write."""
        return []

    async def started(self, job: Job, handle: Handle) -> None:
        """The attempt is running (also called for an attempt adopted after a restart)."""

    async def ending(self, job: Job, status: ExitStatus, final: bool) -> dict[str, Any]:
        """The attempt's processes are gone; return a telemetry patch for its final record.
        ``final``: no retry follows, the job ends with this attempt."""
        return {}

    async def ended(self, job: Job) -> None:
        """The attempt's end is recorded (the job may be terminal, or queued for a retry)."""


class Stopper(Protocol):
    """What a plug-in may ask of the daemon: stop an attempt for a reason of the service's."""

    async def stop_with_error(self, job_id: int, error: dict[str, Any]) -> bool:
        """Stop job ``job_id``'s running attempt; it ends ``failed`` with ``error`` once its
        processes are gone. False if it is not running here (or is already being stopped)."""
        ...
