"""Crash recovery: what to do, at start, with jobs a previous server left active.

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
from typing import TYPE_CHECKING, Any

from jobyard.core.ports import Transition
from jobyard.core.states import ACTIVE, JobState
from jobyard.executors.base import ExitStatus, Handle
from jobyard.store.files import run_dir

if TYPE_CHECKING:
    from jobyard.daemon.daemon import Daemon

log = logging.getLogger(__name__)


async def reconcile(daemon: Daemon) -> None:
    store: Any = daemon.store
    for cluster in await daemon.db(store.clusters.list_clusters, None, True):
        daemon.allocator.set_reservation(cluster.uid, cluster.instances)
    jobs = await daemon.db(daemon.store.jobs.jobs_in_states, list(ACTIVE), 100_000)
    for job in jobs:
        daemon.allocator.restore(job.id, job.assigned)
        found, status = daemon.executor.recover(
            str(run_dir(daemon.config.data_dir, job.uid, job.attempt))
        )
        handle = Handle.from_dict(job.runtime) if job.runtime else found
        if handle is None:
            await _never_started(daemon, job)
            continue
        attempt = daemon.start_attempt_record(job, handle)
        if status is None and daemon.executor.adopt(handle):
            log.info("adopting %s (pid %s)", job.uid, handle.pid)
            daemon.launch_task(attempt)
            continue
        if status is None:
            status = ExitStatus(
                "lost",
                message="the job's supervisor disappeared without an exit status "
                "(server or machine restart)",
            )
        attempt.timed_out = bool(job.extra.get("timed_out"))
        await daemon.finish(attempt, status)


async def _never_started(daemon: Daemon, job) -> None:
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
    await daemon.db(daemon.store.jobs.apply, [Transition(job.id, target, fields)])
    daemon.allocator.release(job.id)
