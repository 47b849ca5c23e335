"""One attempt of a job, from its launch (or its adoption after a restart) to its recorded end.

The :class:`AttemptRunner` starts each attempt the daemon admits, watches it, arms its time
limit, stops it on a cancel, a time-out or a plug-in's request (it is the hooks'
:class:`~jobyard.daemon.hooks.Stopper`), and records how it ended: the attempt's resources go
back to the allocator only after that. Crash recovery (``daemon/reconcile.py``) hands it the
attempts a previous server left behind. It shares the daemon's :class:`BatchWriter`, so every
store call of the daemon runs on one worker thread, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from jobyard.config import Config
from jobyard.core.models import Job
from jobyard.core.ports import Store, Transition
from jobyard.core.states import JobState, Substate
from jobyard.core.tokens import Signer
from jobyard.daemon.hooks import AttemptHook, Stopper
from jobyard.daemon.inventory import Allocator
from jobyard.daemon.outcome import decide
from jobyard.daemon.writer import BatchWriter
from jobyard.errors import JobyardError, LaunchError
from jobyard.events.notify import Notifier
from jobyard.executors import identity, jobclient
from jobyard.executors.base import Executor, ExitStatus, Handle, LaunchSpec
from jobyard.executors.identity import Identity
from jobyard.store.files import run_dir, server_files, work_dir, workspaces_dir
from jobyard.telemetry.gpu import GpuProbe

log = logging.getLogger(__name__)
T = TypeVar("T")

GPU_POLL_S = 0.05
TIMER_SLACK_S = 0.01  # a time limit this close to its end has run out (clocks differ a little)
# A failed write of an attempt's end is tried again after this, doubling up to the max.
END_RETRY_FIRST_S = 0.2
END_RETRY_MAX_S = 10.0
# Server settings that must never leak into a job's environment.
_PRIVATE_ENV_PREFIXES = ("JOBYARD_",)

# Builds the plug-ins, given what they may ask of the runner (see ``runtime.attempt_hooks``).
HookFactory = Callable[[Stopper], Sequence[AttemptHook]]


def no_hooks(_stopper: Stopper) -> Sequence[AttemptHook]:
    return ()


@dataclass
class Attempt:
    """What the daemon knows about an attempt it is running right now."""

    job: Job
    handle: Handle | None = None
    stop_sent: bool = False
    timed_out: bool = False
    timer: asyncio.TimerHandle | None = None
    paused: bool = False  # the executor stopped its processes (the job is ``paused``)
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class AttemptRunner:
    def __init__(
        self,
        config: Config,
        store: Store,
        writer: BatchWriter,
        executor: Executor,
        allocator: Allocator,
        notifier: Notifier,
        clock: Callable[[], float] = time.time,
        gpu_probe: GpuProbe | None = None,
        signer: Signer | None = None,
        hooks: HookFactory = no_hooks,
    ):
        self.config = config
        self.store = store
        self.writer = writer
        self.executor = executor
        self.allocator = allocator
        self.notifier = notifier
        self.clock = clock
        self.gpu_probe = gpu_probe
        self.signer = signer or Signer(b"")
        self.attempts: dict[int, Attempt] = {}
        self._base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIXES)
        }
        self._client: Path | None = None  # the reporting client for jobs, installed on first use
        self._hidden = server_files(config.data_dir, config.resolved_database_url,
                                    os.environ.get("JOBYARD_CONFIG"))
        self.hooks = list(hooks(self))  # last: the plug-ins are given a complete runner

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.writer.call(fn, *args)

    async def apply(self, transition: Transition) -> Job | Exception:
        return await self.writer.apply(transition)

    # how an attempt comes to be watched ----------------------------------------------------------
    def launch(self, job: Job) -> Attempt:
        """Start a new attempt of ``job`` (just admitted: ``launching``)."""
        attempt = self._record(Attempt(job=job))
        self._watch(attempt)
        return attempt

    def adopt(self, job: Job, handle: Handle) -> Attempt:
        """Watch an attempt a previous server started, whose processes still run."""
        attempt = self._record(Attempt(job=job, handle=handle, timed_out=job.timed_out))
        self._watch(attempt)
        return attempt

    async def ended_unwatched(self, job: Job, handle: Handle, status: ExitStatus) -> None:
        """Record the end of an attempt that ended while no server was watching it."""
        attempt = self._record(Attempt(job=job, handle=handle, timed_out=job.timed_out))
        await self.finish(attempt, status)

    def _record(self, attempt: Attempt) -> Attempt:
        self.attempts[attempt.job.id] = attempt
        return attempt

    def _watch(self, attempt: Attempt) -> None:
        name = f"attempt-{attempt.job.uid}"
        attempt.task = asyncio.create_task(self._run(attempt), name=name)

    async def shutdown(self) -> None:
        """Stop watching. Running jobs keep running and are adopted by the next start."""
        for attempt in self.attempts.values():
            if attempt.timer:
                attempt.timer.cancel()
            if attempt.task:
                attempt.task.cancel()
        await asyncio.gather(*(a.task for a in self.attempts.values() if a.task),
                             return_exceptions=True)

    # one attempt ---------------------------------------------------------------------------------
    async def _run(self, attempt: Attempt) -> None:
        try:
            if attempt.handle is None:
                if not await self._launch(attempt):
                    return
            else:
                await self._adopted(attempt)
            self._arm_timer(attempt)
            assert attempt.handle is not None
            status = await self.executor.wait(attempt.handle)
            await self.finish(attempt, status)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("attempt of %s crashed", attempt.job.uid)
            await self.finish(attempt, ExitStatus("lost", message="internal error in the daemon"))

    async def _launch(self, attempt: Attempt) -> bool:
        job = attempt.job
        try:
            for hook in self.hooks:
                await hook.prepare(job)
            attempt.handle = await self.executor.launch(self.launch_spec(job))
        except LaunchError as exc:
            await self.finish(attempt, ExitStatus("launch_failed", message=exc.message))
            return False
        fields = {"runtime": attempt.handle.to_dict(), "substate": str(Substate.WARMING_UP),
                  "paused_at": None, "paused_s": 0.0}  # a pause is the attempt's
        result = await self.apply(Transition(job.id, JobState.RUNNING, fields))
        if isinstance(result, Exception):
            # Canceled while it was launching: keep the handle, then stop it.
            updated = await self.db(self.store.jobs.update_fields, job.id,
                                    {"runtime": attempt.handle.to_dict()})
            attempt.job = updated or attempt.job
            await self._stop(attempt)
        else:
            attempt.job = result
        await self._call_hooks("started", attempt.job, attempt.handle)
        return True

    async def _adopted(self, attempt: Attempt) -> None:
        job = attempt.job
        assert attempt.handle is not None
        if job.state is JobState.LAUNCHING:
            fields = {"runtime": attempt.handle.to_dict(), "substate": str(Substate.WARMING_UP)}
            result = await self.apply(Transition(job.id, JobState.RUNNING, fields))
            if not isinstance(result, Exception):
                attempt.job = result
        await self._call_hooks("started", attempt.job, attempt.handle)
        if attempt.job.state is JobState.CANCELING or attempt.timed_out:
            await self._stop(attempt)
        elif attempt.job.state is JobState.PAUSED:
            # Its processes stay stopped (again: the pause may not have landed before the crash).
            await self._pause(attempt)

    # stopping ------------------------------------------------------------------------------------
    def _arm_timer(self, attempt: Attempt) -> None:
        job = attempt.job
        if not job.time_limit_s or attempt.timed_out or attempt.paused or attempt.stop_sent:
            return
        started = job.started_at or self.clock()
        # The time limit does not run while the job is paused (as Slurm's suspend).
        delay = max(0.0, started + job.time_limit_s + job.paused_s - self.clock())
        loop = asyncio.get_running_loop()
        attempt.timer = loop.call_later(
            delay, lambda: asyncio.ensure_future(self._time_out(attempt))
        )

    async def cancel(self, job: Job) -> None:
        """Honour ``job``'s cancel (it is ``canceling``) if its attempt runs here."""
        attempt = self.attempts.get(job.id)
        if attempt is None:
            return  # reconcile owns it, or its attempt just ended
        attempt.job = job
        if attempt.handle is not None and not attempt.stop_sent:
            await self._stop(attempt)

    async def stop_with_error(self, job_id: int, error: dict[str, Any]) -> bool:
        """Stop a running attempt for a reason of the service's (e.g. a budget): the job ends
        ``failed`` with ``error`` once its processes are gone. False if it is not running here.
        """
        attempt = self.attempts.get(job_id)
        if attempt is None or attempt.handle is None or attempt.stop_sent:
            return False
        updated = await self.db(
            self.store.jobs.update_fields, job_id,
            {"stop_error": error, "substate": str(Substate.STOPPING), "message": error["message"]},
            "stopping",
        )
        attempt.job = updated or attempt.job
        await self._stop(attempt)
        return True

    async def _time_out(self, attempt: Attempt) -> None:
        if attempt.stop_sent or attempt.handle is None or attempt.paused:
            return
        fresh = await self.db(self.store.jobs.get_job, attempt.job.id)
        if fresh is not None and fresh.state is JobState.PAUSED:
            attempt.job = fresh  # paused just now: honour it here (the resume re-arms the timer)
            await self._pause(attempt)
            return
        if (fresh is not None and fresh.started_at and fresh.time_limit_s
                and fresh.started_at + fresh.time_limit_s + fresh.paused_s
                > self.clock() + TIMER_SLACK_S):
            attempt.job = fresh  # paused and resumed before this daemon saw it: later
            self._arm_timer(attempt)
            return
        attempt.timed_out = True
        updated = await self.db(
            self.store.jobs.update_fields, attempt.job.id,
            {"timed_out": True, "substate": str(Substate.STOPPING)}, "timeout",
        )
        attempt.job = updated or attempt.job
        await self._stop(attempt)

    async def _stop(self, attempt: Attempt) -> None:
        attempt.stop_sent = True
        assert attempt.handle is not None
        stopping = asyncio.create_task(self.executor.stop(attempt.handle,
                                                          self.config.kill_grace_s))
        # The stop is now under way (Integrate.io tells "stop requested" and "stopping" apart).
        with contextlib.suppress(Exception):
            await self.db(self.store.jobs.update_fields, attempt.job.id,
                          {"substate": str(Substate.STOPPING)}, None, JobState.CANCELING)
        await stopping
        if attempt.paused or attempt.job.paused_at is not None:
            # Stopped processes must run to see the SIGTERM (a SIGKILL needs no help).
            attempt.paused = False
            await self.executor.resume(attempt.handle)

    # pause and resume --------------------------------------------------------------------------
    async def pause(self, job: Job) -> None:
        """Honour ``job``'s pause (it is ``paused``) if its attempt runs here: stop its
        processes and its time limit."""
        attempt = self.attempts.get(job.id)
        if attempt is None:
            return  # reconcile owns it, or its attempt just ended
        attempt.job = job
        await self._pause(attempt)

    async def resume(self, job: Job) -> None:
        """Honour ``job``'s resume (it is ``running`` again) if its attempt runs here and is
        paused: continue its processes and arm its time limit for what is left of it."""
        attempt = self.attempts.get(job.id)
        if attempt is None or not attempt.paused:
            return
        attempt.job = job
        if attempt.stop_sent or attempt.handle is None:
            return
        attempt.paused = False
        await self.executor.resume(attempt.handle)
        self._arm_timer(attempt)

    async def _pause(self, attempt: Attempt) -> None:
        if attempt.paused or attempt.stop_sent or attempt.handle is None:
            return
        attempt.paused = True
        if attempt.timer:
            attempt.timer.cancel()
            attempt.timer = None
        await self.executor.pause(attempt.handle)

    def paused_ids(self) -> list[int]:
        """The jobs whose attempts are paused here."""
        return [job_id for job_id, attempt in self.attempts.items() if attempt.paused]

    # the end -------------------------------------------------------------------------------------
    async def finish(self, attempt: Attempt, status: ExitStatus) -> None:
        """Record how an attempt ended; give its resources back only after that."""
        # Decide on the stored truth (a cancel, a timeout, reports may have changed it), and
        # hand the hooks that same fresh copy.
        job = await self.db(self.store.jobs.get_job, attempt.job.id) or attempt.job
        if attempt.timer:
            attempt.timer.cancel()
        if status.reason in ("stopped", "lost") and attempt.handle and attempt.handle.marker:
            # Last resort for processes that outlived their supervisor.
            await asyncio.to_thread(self.executor.sweep, attempt.handle.marker, attempt.handle)
        if status.reason == "stopped":
            status = await self._gpus_released(job, status)
        # Whether the job ends with this attempt (the hooks then write its totals).
        final = decide(job, status, self.clock(), attempt.timed_out).to.is_terminal
        patch: dict[str, Any] = {}
        for result in await self._call_hooks("ending", job, status, final):
            patch.update(result or {})
        # Decided again once the hooks are done: a retry's delay counts from the recorded end.
        transition = replace(decide(job, status, self.clock(), attempt.timed_out),
                             telemetry=patch or None)
        result = await self._record_end(job, transition)
        if isinstance(result, Exception):  # refused: the job moved (or went) meanwhile
            log.error("could not record the end of %s: %s", job.uid, result)
        self.attempts.pop(job.id, None)
        self.allocator.release(job.id)
        self.notifier.wake_daemon()
        await self._call_hooks("ended", result if isinstance(result, Job) else job)

    async def _record_end(self, job: Job, transition: Transition) -> Job | Exception:
        """Write an attempt's end until it commits. A failed write (a full disk, a database
        failover, a lock timeout) is tried again with backoff, the attempt's resources still
        reserved; a refused move (the job changed or was deleted meanwhile) is returned."""
        delay = END_RETRY_FIRST_S
        while True:
            result = await self.apply(transition)
            if not isinstance(result, Exception) or isinstance(result, JobyardError):
                return result
            log.error("could not record the end of %s (%s: %s); trying again in %g s",
                      job.uid, type(result).__name__, result, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, END_RETRY_MAX_S)

    async def _call_hooks(self, name: str, *args: Any) -> list[Any]:
        results = []
        for hook in self.hooks:
            try:
                results.append(await getattr(hook, name)(*args))
            except Exception:
                log.exception("hook %s.%s failed", type(hook).__name__, name)
        return results

    async def _gpus_released(self, job: Job, status: ExitStatus) -> ExitStatus:
        """With NVML: wait until no process is left on the job's GPUs (bounded), and say so."""
        gpus = (job.assigned or {}).get("gpus") or []
        if self.gpu_probe is None or not gpus:
            return status
        deadline = self.clock() + self.config.gpu_release_timeout_s
        while left := await asyncio.to_thread(self.gpu_probe.processes, gpus):
            if self.clock() >= deadline:
                log.warning("%s: processes %s still on GPUs %s", job.uid, sorted(left), gpus)
                break
            await asyncio.sleep(GPU_POLL_S)
        receipt = {**(status.receipt or {}), "gpu_processes_left": sorted(left)}
        return replace(status, receipt=receipt)

    def _own_dirs(self, job: Job, workdir: str) -> list[str]:
        """The job's working dir when it is the job's to write: its run's, or a workspace the
        server made for it (the whole workspace: its project and what sits beside it)."""
        if not job.workdir:
            return [workdir]
        if job.workspace_replica:  # made by the server (here, or fetched from its replica)
            return [str(Path(workdir).parent)]
        base = workspaces_dir(self.config.data_dir).resolve()
        path = Path(workdir).resolve()
        if base in path.parents:
            return [str(base / path.relative_to(base).parts[0])]
        return []

    # what a launch gets --------------------------------------------------------------------------
    def tenant(self, job: Job) -> Identity | None:
        """The OS identity ``job`` runs as (None: the server's own)."""
        try:
            return identity.of_job(self.config.job_identity, self.config.job_uid_range,
                                   job.org_id, job.user_id, str(self.config.data_dir))
        except ValueError as exc:
            raise LaunchError(str(exc)) from None

    def launch_spec(self, job: Job) -> LaunchSpec:
        directory = run_dir(self.config.data_dir, job.uid, job.attempt)  # the supervisor makes it
        outputs = directory / "outputs"
        workdir = job.workdir or str(work_dir(directory))
        gpus = (job.assigned or {}).get("gpus", [])
        marker = f"{job.uid}.{job.attempt}"
        tenant = self.tenant(job)
        if self._client is None:
            self._client = jobclient.install(self.config.data_dir)
        env = {
            **self._base_env,
            **job.env,
            "JOBYARD_URL": self.config.url,
            "JOBYARD_JOB_ID": job.uid,
            "JOBYARD_JOB_NUMBER": str(job.id),
            "JOBYARD_ATTEMPT": str(job.attempt),
            "JOBYARD_JOB_MARKER": marker,
            "JOBYARD_JOB_TOKEN": self.signer.job_token(job.uid, job.attempt),
            "JOBYARD_OUTPUT_DIR": str(outputs),
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
        }
        env.update(jobclient.job_env(self._client, env, first=tenant is not None))
        if tenant is not None:
            env.update(HOME=tenant.home, USER=f"jobyard{tenant.uid}",
                       LOGNAME=f"jobyard{tenant.uid}")
        shared: list[str] = []
        for hook in self.hooks:
            env.update(hook.env(job, directory))
            shared.extend(hook.shared_dirs(job))
        argv = ["/bin/sh", "-c", job.command] if isinstance(job.command, str) else job.command
        return LaunchSpec(
            job_uid=job.uid,
            attempt=job.attempt,
            argv=list(argv),
            env=env,
            cwd=workdir,
            run_dir=str(directory),
            log_cap_bytes=self.config.log_cap_bytes,
            grace_s=self.config.kill_grace_s,
            marker=marker,
            dirs=(str(outputs), *self._own_dirs(job, workdir)),
            shared_dirs=tuple(shared),
            identity=tenant.to_dict() if tenant else None,
            hidden=self._hidden,
            visible=(str(self._client),),
            limits={
                "memory_bytes": job.resources.memory_mb * 1024 * 1024 or None,
                "cpus": job.resources.cpus or None,
            },
            gpus=tuple(gpus),
        )
