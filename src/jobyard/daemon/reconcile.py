"""Crash recovery: what to do, at start, with jobs a previous server left active (and, on
every periodic pass, with an active job no attempt of this daemon watches).

* an attempt whose supervisor still runs (same pid and start time) is adopted: the daemon waits
  for it, honours a pending cancel or time limit, and records its real exit code;
* an attempt that ended while no server was watching is recorded from the exit-status file its
  supervisor left next to it;
* an attempt whose supervisor vanished without one is marked failed with a message;
* a job admitted but never started goes back to the queue.

Clusters' reservations are restored first, from the store's record (``clusters.instances``),
which is the only truth after a crash: what a claim reserved but did not record is not held.
"""

from __future__ import annotations

import logging
from typing import Any

from jobyard.core.models import Job
from jobyard.core.ports import Transition
from jobyard.core.states import ACTIVE, JobState
from jobyard.daemon.attempts import AttemptRunner
from jobyard.executors.base import ExitStatus, Handle
from jobyard.store.files import run_dir

log = logging.getLogger(__name__)


async def reconcile(runner: AttemptRunner) -> None:
    """Run once at start, before the first tick: every active job is adopted, recorded as
    ended, or put back (through ``runner``, which then owns its attempt)."""
    store, allocator = runner.store, runner.allocator
    for cluster in await runner.db(store.clusters.list_clusters, None, True):
        allocator.set_reservation(cluster.uid, cluster.instances)
    for job in await runner.db(store.jobs.jobs_in_states, list(ACTIVE), 100_000):
        await _recover(runner, job)


async def reconcile_unwatched(runner: AttemptRunner, suspects: set[int]) -> set[int]:
    """Recover active jobs no attempt of this daemon watches, as at a start. A job is taken
    for one only when a previous pass saw it unwatched too (``suspects``), so one caught
    between its admission and its attempt record is never touched. Returns this pass's
    suspects (for the next pass)."""
    jobs = await runner.db(runner.store.jobs.jobs_in_states, list(ACTIVE), 100_000)
    unwatched = {job.id: job for job in jobs if job.id not in runner.attempts}
    for job_id in sorted(unwatched.keys() & suspects):
        job = unwatched[job_id]
        log.warning("%s is %s but no attempt watches it: recovering it", job.uid, job.state)
        await _recover(runner, job)
    return set(unwatched) - suspects


async def _recover(runner: AttemptRunner, job: Job) -> None:
    runner.allocator.restore(job.id, job.assigned)
    found, status = runner.executor.recover(
        str(run_dir(runner.config.data_dir, job.uid, job.attempt)))
    handle = Handle.from_dict(job.runtime) if job.runtime else found
    if handle is None:
        await _never_started(runner, job)
        return
    if status is None and runner.executor.adopt(handle):
        log.info("adopting %s (pid %s)", job.uid, handle.pid)
        runner.adopt(job, handle)
        return
    if status is None:
        status = ExitStatus(
            "lost",
            message="the job's supervisor disappeared without an exit status "
            "(server or machine restart)",
        )
    await runner.ended_unwatched(job, handle, status)


async def _never_started(runner: AttemptRunner, job: Job) -> None:
    fields: dict[str, Any]
    if job.state is JobState.LAUNCHING:
        target, fields = JobState.QUEUED, {"assigned": None, "message": "requeued after a restart"}
    elif job.state is JobState.CANCELING:
        target, fields = JobState.CANCELED, {"substate": None, "message": "canceled"}
    else:
        target = JobState.FAILED
        fields = {
            "substate": None,
            "message": "lost in a restart before it started",
            "error": {"code": "LOST", "message": "lost in a restart before it started",
                      "details": {}},
        }
    await runner.db(runner.store.jobs.apply, [Transition(job.id, target, fields)])
    runner.allocator.release(job.id)
