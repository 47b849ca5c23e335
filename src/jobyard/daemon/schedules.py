"""The schedule runner (leader only, through ``Periodic``): submits the run of every enabled
schedule whose ``next_run_at`` is due, and terminates idle Integrate.io clusters.

A run is exactly-once: the job is submitted with an idempotency key made of the schedule and
the due time, and the schedule is then moved past that time with a compare-and-set. A crash
in between makes the next tick submit again, which replays the same job instead of making a
second one. A run is skipped (the schedule still moves on) while the schedule's previous run
is queued or running, and runs missed while no server led are not made up
(``core/packages.py``).

Idle clusters: a cluster created through the Integrate.io API with ``terminate_on_idle`` is
released once it has had no queued or running job for ``time_to_idle`` seconds (counted from
when it became available or its last job ended). Those settings live in the ``kv`` table
under ``core.packages.CLUSTER_META`` + the cluster's integer id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from jobyard.core.clusters import ClusterService, ClusterState
from jobyard.core.inputs import RunPackage
from jobyard.core.jobs import JobService
from jobyard.core.models import Principal
from jobyard.core.packages import CLUSTER_META, PackageService, next_run
from jobyard.core.ports import Store
from jobyard.errors import JobyardError

log = logging.getLogger(__name__)
IDLE_CHECK_S = 5.0  # how often idle clusters are looked for
BATCH = 100


class ScheduleRunner:
    INTERVAL_S = 1.0  # how often due schedules are looked for (one indexed query)

    def __init__(self, store: Store, jobs: JobService, clusters: ClusterService | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.packages = PackageService(store.packages, jobs, clock)
        self.clusters = clusters
        self.clock = clock
        self._idle_checked = 0.0

    async def tick(self) -> int:
        """One look: run what is due, refresh last runs' states, end idle clusters. Returns
        how many runs were submitted."""
        submitted = await asyncio.to_thread(self.run_due)
        await asyncio.to_thread(self.store.packages.refresh_schedule_runs)
        if self.clusters is not None and self.clock() - self._idle_checked >= IDLE_CHECK_S:
            self._idle_checked = self.clock()
            await asyncio.to_thread(self.terminate_idle)
        return submitted

    def run_due(self) -> int:
        now = self.clock()
        submitted = 0
        for schedule, username in self.store.packages.due_schedules(now, BATCH):
            due = schedule.next_run_at
            assert due is not None
            upcoming = next_run(schedule.start_at, schedule.interval_amount,
                                schedule.interval_unit, max(now, due))
            if self.store.jobs.job_is_live(schedule.last_job_id):
                log.info("schedule %s: run due at %s skipped, its last run (job %s) is still "
                         "going", schedule.id, due, schedule.last_job_id)
                self.store.packages.advance_schedule(schedule.id, due, upcoming, None, now)
                continue
            who = Principal(schedule.user_id, schedule.org_id, username)
            try:
                package = self.packages.get_package(who, schedule.package_id)
                job, _ = self.packages.run(who, package, RunPackage(
                    schedule.variables, schedule_id=schedule.id,
                    idempotency=(f"schedule-{schedule.id}-{due!r}", f"schedule:{schedule.id}")))
            except JobyardError as exc:  # e.g. the package no longer fits: the next run tries
                log.warning("schedule %s: run due at %s not submitted: %s", schedule.id, due,
                            exc.message)
                self.store.packages.advance_schedule(schedule.id, due, upcoming, None, now)
                continue
            if self.store.packages.advance_schedule(schedule.id, due, upcoming, job, now):
                submitted += 1
        return submitted

    def terminate_idle(self) -> int:
        assert self.clusters is not None
        metas = self.store.kv.kv_prefixed(CLUSTER_META)
        watched = {int(k[len(CLUSTER_META):]): v for k, v in metas.items()
                   if isinstance(v, dict) and v.get("terminate_on_idle") and not v.get("gone")}
        ended = 0
        for number, meta in watched.items():
            cluster = self.store.clusters.cluster_by_number(number)
            if cluster is None or cluster.state in (ClusterState.RELEASED, ClusterState.FAILED):
                # Never looked at again (the flag is not shown through the API).
                self.store.kv.put_kv(f"{CLUSTER_META}{number}", {**meta, "gone": True})
                continue
            if cluster.state is not ClusterState.READY:
                continue
            facts = self.store.clusters.cluster_facts([cluster.uid])[cluster.uid]
            if facts["live_jobs"] or facts["open"]:
                continue
            since = max(x for x in (facts["claimed_at"], facts["last_job_end"],
                                    cluster.created_at) if x is not None)
            if self.clock() - since < float(meta.get("time_to_idle") or 0):
                continue
            owner = Principal(cluster.user_id, cluster.org_id, "terminate_on_idle")
            try:
                self.clusters.release(owner, cluster.uid)
                ended += 1
                log.info("cluster %s idle since %s: terminated", cluster.uid, since)
            except JobyardError as exc:  # protected, or a request on it meanwhile
                log.info("idle cluster %s not terminated: %s", cluster.uid, exc.message)
        return ended
