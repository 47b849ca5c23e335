"""The daemon: admits queued jobs, runs each attempt through the executor, records the end.

Only the daemon moves a job out of ``queued``/``launching``; the API only records intent.
All store calls run on one worker thread so a slow write never blocks the event loop and the
daemon's writes stay in order.

This module is the loop (leadership, reconcile, ticks: cancels, pauses and resumes,
admission, the scheduler snapshot); each attempt, from launch to recorded end, is the
:class:`AttemptRunner`'s (``daemon/attempts.py``), with the plug-ins (``daemon/plugins/``)
around it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jobyard.config import Config
from jobyard.core.clusters import HOLDING
from jobyard.core.jobs import SCHEDULER_SNAPSHOT
from jobyard.core.models import Job
from jobyard.core.ports import QueuedJob, Store, Transition
from jobyard.core.states import JobState
from jobyard.core.tokens import Signer
from jobyard.daemon import scheduler
from jobyard.daemon.attempts import AttemptRunner, HookFactory, no_hooks
from jobyard.daemon.inventory import Allocator
from jobyard.daemon.leader import Leadership
from jobyard.daemon.reconcile import reconcile, reconcile_unwatched
from jobyard.daemon.writer import BatchWriter
from jobyard.events.notify import Notifier
from jobyard.executors.base import Executor
from jobyard.store.engine import FENCE
from jobyard.telemetry.gpu import GpuProbe

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUE_SCAN = 200  # queued jobs looked at per tick (the head of the queue)
COALESCE_S = 0.002  # the pause after a wake-up, so that a burst of submits makes one tick


class Daemon:
    def __init__(
        self,
        config: Config,
        store: Store,
        executor: Executor,
        allocator: Allocator,
        notifier: Notifier,
        leadership: Leadership | None = None,
        clock: Callable[[], float] = time.time,
        gpu_probe: GpuProbe | None = None,
        signer: Signer | None = None,
        hooks: HookFactory = no_hooks,
        reconciled: threading.Event | None = None,
    ):
        self.config = config
        self.store = store
        self.allocator = allocator
        self.notifier = notifier
        self.leadership = leadership
        self.clock = clock
        self.writer = BatchWriter(store)
        # Runs each attempt; the plug-ins are built by ``hooks`` around it.
        self.runner = AttemptRunner(config, store, self.writer, executor, allocator, notifier,
                                    clock, gpu_probe, signer, hooks)
        self._stopping = False
        self._last_snapshot: Any = None
        # Set once reconcile rebuilt the allocator: the operation processor waits for it.
        self.reconciled = reconciled or threading.Event()

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.writer.call(fn, *args)

    async def apply(self, transition: Transition) -> Job | Exception:
        return await self.writer.apply(transition)

    # main loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Lead whenever this replica holds the lease: stand by until it does, lead until it
        is lost (then stand down, leaving the jobs to the new leader) or the daemon stops."""
        lead = self.leadership
        FENCE.set(lead.fence if lead else None)  # this task's writes, and its children's
        while not self._stopping:
            if lead is not None and not await self._stand_by(lead):
                return
            renewing = asyncio.create_task(self._renew(lead)) if lead is not None else None
            try:
                await self._lead()
            finally:
                if renewing is not None:
                    renewing.cancel()
            if not self._stopping:
                await self._stand_down()

    async def _stand_by(self, lead: Leadership) -> bool:
        """Wait until this replica leads (True) or the daemon stops (False)."""
        told = False
        while not await asyncio.to_thread(lead.try_acquire):
            if self._stopping:
                return False
            if not told:
                log.info("another daemon leads; standing by")
                told = True
            await asyncio.sleep(self.config.tick_interval_s)
        log.info("this replica leads the daemon")
        return not self._stopping

    async def _renew(self, lead: Leadership) -> None:
        while await asyncio.to_thread(lead.renew):
            await asyncio.sleep(lead.lease_s / 3)
        log.error("the daemon lease passed to another replica: standing down")
        self.notifier.wake_daemon()

    async def _stand_down(self) -> None:
        """Forget what leading built (the new leader adopts the jobs from the store)."""
        await self.runner.shutdown()
        self.runner.attempts.clear()
        self.allocator.held.clear()
        self.allocator.reserved.clear()
        self.reconciled.clear()
        self._last_snapshot = None

    async def _lead(self) -> None:
        await reconcile(self.runner)
        self.reconciled.set()
        periodic = True
        suspects: set[int] = set()
        next_reconcile = self.clock() + self.config.reconcile_interval_s
        while not self._stopping and (self.leadership is None or self.leadership.held):
            try:
                # Cancels, pauses and resumes are looked for when one was asked here, and on
                # every periodic tick (another replica's API may have recorded one).
                await self.tick(check_cancels=periodic or self.notifier.take_cancels(),
                                check_pauses=periodic or self.notifier.take_pauses())
                if self.clock() >= next_reconcile:  # no active job is ever left unwatched
                    next_reconcile = self.clock() + self.config.reconcile_interval_s
                    suspects = await reconcile_unwatched(self.runner, suspects)
            except Exception:  # a bad tick must not kill the daemon; the next one retries
                log.exception("scheduler tick failed")
            periodic = not await self.notifier.daemon_wait(self.config.tick_interval_s)
            if not periodic:
                await asyncio.sleep(COALESCE_S)  # one tick for a burst of submits, not one each

    async def shutdown(self) -> None:
        """Stop scheduling. Running jobs keep running and are adopted by the next start."""
        self._stopping = True
        await self.runner.shutdown()
        if self.leadership:
            await asyncio.to_thread(self.leadership.release)
        self.writer.close()

    async def tick(self, check_cancels: bool = True, check_pauses: bool = True) -> None:
        """One look at the world: honour cancels, pauses and resumes, admit what fits, publish
        free resources."""
        if check_cancels:
            await self._honour_cancels()
        if check_pauses:
            await self._honour_pauses()
        free = self.allocator.free()
        if free.cpus > 0 or free.gpus > 0 or self.allocator.reserved:  # clusters' jobs too
            queued = await self.db(self.store.jobs.queued, QUEUE_SCAN)
            await self._admit(queued)
        await self._write_snapshot()

    async def _admit(self, queued: list[QueuedJob]) -> None:
        await self._fail_orphans(queued)
        admitted = scheduler.admit(queued, self.allocator, self.clock())
        if admitted:
            now = self.clock()
            transitions = [
                Transition(job.id, JobState.LAUNCHING, {
                    # When it was admitted, and since when it could have been (cold start).
                    "assigned": {**assigned, "admitted_at": now, "replica": self.config.replica,
                                 "eligible_at": job.next_retry_at},
                    "substate": None, "next_retry_at": None,
                })
                for job, assigned in admitted
            ]
            results = await self.writer.apply_many(transitions)
            for (job, _), result in zip(admitted, results, strict=True):
                if isinstance(result, Exception):  # canceled meanwhile
                    self.allocator.release(job.id)
                    continue
                self.runner.launch(result)

    async def _fail_orphans(self, queued: list[QueuedJob]) -> None:
        """Fail queued jobs whose cluster is gone (released while they were being submitted):
        nothing will ever run them. Only clusters the allocator no longer holds are looked up."""
        orphans = [j for j in queued
                   if j.cluster_id is not None and j.cluster_id not in self.allocator.reserved]
        for job in orphans:
            cluster = await self.db(self.store.clusters.get_cluster, job.cluster_id)
            if cluster is not None and cluster.state in HOLDING:
                continue
            message = f"its cluster {job.cluster_id} was released before the job could start"
            await self.apply(Transition(job.id, JobState.FAILED, {
                "substate": None, "message": message,
                "error": {"code": "CLUSTER_GONE", "message": message,
                          "details": {"cluster_id": job.cluster_id}},
            }))
            queued.remove(job)

    async def _honour_cancels(self) -> None:
        canceling = await self.db(self.store.jobs.jobs_in_states, [JobState.CANCELING], 1000)
        for job in canceling:
            await self.runner.cancel(job)

    async def _honour_pauses(self) -> None:
        """Stop the processes of jobs that are ``paused``; continue those of paused attempts
        whose job is ``running`` again (resumed)."""
        paused = await self.db(self.store.jobs.jobs_in_states, [JobState.PAUSED], 1000)
        for job in paused:
            await self.runner.pause(job)
        for job_id in sorted(set(self.runner.paused_ids()) - {job.id for job in paused}):
            fresh = await self.db(self.store.jobs.get_job, job_id)
            if fresh is not None and fresh.state is JobState.RUNNING:
                await self.runner.resume(fresh)

    async def _write_snapshot(self) -> None:
        free = self.allocator.free()
        snapshot = {"free": {"gpus": free.gpus, "cpus": free.cpus, "memory_mb": free.memory_mb}}
        if snapshot != self._last_snapshot:
            await self.db(self.store.kv.put_kv, SCHEDULER_SNAPSHOT, snapshot)
            self._last_snapshot = snapshot
