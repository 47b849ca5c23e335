"""Extension points around an attempt, for telemetry, outputs and the like.

The daemon calls every registered hook, in order; each method has a no-op default, so a hook
overrides only what it needs. Hooks must not raise for a job's sake: an exception is logged and
the attempt goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobyard.core.models import Job
from jobyard.executors.base import ExitStatus, Handle

if TYPE_CHECKING:
    from jobyard.daemon.daemon import Daemon


class AttemptHooks:
    def bind(self, daemon: Daemon) -> None:
        """Called once by the daemon that will run this hook (e.g. to stop attempts)."""

    def env(self, job: Job, run_dir: Path) -> dict[str, str]:
        """Extra environment for the attempt about to launch."""
        return {}

    async def started(self, job: Job, handle: Handle) -> None:
        """The attempt is running (also called for an attempt adopted after a restart)."""

    async def ending(self, job: Job, status: ExitStatus) -> dict[str, Any]:
        """The attempt's processes are gone; return a telemetry patch for its final record."""
        return {}

    async def ended(self, job: Job) -> None:
        """The attempt's end is recorded (the job may be terminal, or queued for a retry)."""
