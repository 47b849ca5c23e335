"""The daemon's resource sampler: one loop for every running attempt (an ``AttemptHook``).

Every ``metrics_interval_s`` it samples each attempt's process tree and GPUs (one /proc scan
and one NVML pass per round, off the event loop), stores the round in one transaction (the
downsampled series in ``job_metrics``, the latest values, averages, peaks, accrued cost and
cold start in ``telemetry``), then checks budgets. When an attempt ends it writes, with the
job's end, the final ``resources``, ``cold_start`` and ``cost``; when the job is done (no
retry follows) also ``total_cost`` and ``efficiency``.

Budgets (users' and orgs', lifetime totals): an owner's spend is the total cost of its ended
jobs plus what its active jobs have accrued. When the spend *plus what its running jobs will
accrue by the next round* is over a budget, every running job of that owner is stopped (through
the :class:`~jobyard.daemon.hooks.Stopper` it was given) and ends ``failed`` with
``BUDGET_EXCEEDED``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobyard.config import Config
from jobyard.core.cost import Prices, accrued, attempt_rate, prior_cost
from jobyard.core.models import Job
from jobyard.core.ports import SampleWrite, Store
from jobyard.daemon.hooks import AttemptHook, Stopper
from jobyard.executors.base import ExitStatus, Handle
from jobyard.executors.cgroups import Cgroup
from jobyard.telemetry import efficiency as eff
from jobyard.telemetry.gpu import GpuStats
from jobyard.telemetry.metrics import AttemptStats, process_table, sample_cgroup, sample_tree

log = logging.getLogger(__name__)
SPEND_TTL_S = 30.0  # how long an owner's settled spend is cached (ends invalidate it sooner)
PURGE_EVERY_S = 3600.0


@dataclass
class Tracked:
    """A running attempt and what was measured about it so far."""

    job: Job
    handle: Handle
    stats: AttemptStats
    marks: dict[str, float]  # cold-start marks from its state events
    rate: float
    currency: str
    prior: float
    setup: tuple[float, str] | None = None
    stopping: bool = False
    reported_setup: bool = field(default=False, repr=False)

    def cost_at(self, now: float) -> float:
        return self.prior + accrued(self.rate, self.job.started_at, now)


class ResourceSampler(AttemptHook):
    """``gpu``: where GPU readings come from (NVML), None for none; ``stopper`` stops the jobs
    of an owner over budget."""

    def __init__(self, config: Config, store: Store, stopper: Stopper,
                 gpu: GpuStats | None = None, clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.stopper = stopper
        self.prices = Prices.from_config(config)
        self.gpu = gpu
        self.clock = clock
        self.tracked: dict[int, Tracked] = {}
        self._task: asyncio.Task[None] | None = None
        self._settled: dict[tuple[str, int], tuple[float, float]] = {}  # -> (spend, as of)
        self._next_purge = 0.0

    # hooks -----------------------------------------------------------------------------------
    async def started(self, job: Job, handle: Handle) -> None:
        if self._needs_store(job):
            tracked = await asyncio.to_thread(self._track, job, handle)
        else:  # the common case reads nothing: no thread hand-off
            tracked = self._track(job, handle)
        self.tracked[job.id] = tracked
        task = asyncio.current_task()  # the attempt's task: when it goes, so does the tracking
        if task is not None:
            task.add_done_callback(lambda _t: self._forget(job.id, tracked))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="jobyard-metrics")

    async def ending(self, job: Job, status: ExitStatus, final: bool) -> dict[str, Any]:
        tracked = self.tracked.pop(job.id, None)
        self._idle_check()
        end = status.ended_at or self.clock()
        if tracked is None or tracked.stats.attempt != job.attempt:  # ended while unwatched
            tracked = await asyncio.to_thread(self._track, job, None)
        if status.cpu_seconds is not None:
            tracked.stats.account_cpu(end, status.cpu_seconds)
        # A few small file reads (its log's first line, its outputs): not worth a thread.
        return self._final(tracked, job, end, final)

    async def ended(self, job: Job) -> None:
        self._settled.pop(("user", job.user_id), None)
        self._settled.pop(("org", job.org_id), None)

    # tracking ----------------------------------------------------------------------------------
    @staticmethod
    def _needs_store(job: Job) -> bool:
        resumed = ((job.telemetry or {}).get("resources") or {}).get("attempt") == job.attempt
        return resumed or eff.marks_from_job(job) is None

    def _track(self, job: Job, handle: Handle | None) -> Tracked:
        telemetry = job.telemetry or {}
        started = (handle.pid_ctime if handle else None) or job.started_at or self.clock()
        resumed = (telemetry.get("resources") or {}).get("attempt") == job.attempt
        points = self.store.telemetry.metric_points(job.id, job.attempt) if resumed else 0
        stats = AttemptStats.from_telemetry(job.attempt, started, telemetry.get("resources"),
                                            points)
        marks = eff.marks_from_job(job) or eff.attempt_marks(self.store.jobs.state_events(job.id))
        rate, currency = attempt_rate(job, self.prices)
        if handle is None:  # not to be sampled: only its run directory is of use
            handle = Handle.from_dict(job.runtime) if job.runtime else Handle("", 0, 0.0)
        return Tracked(job, handle, stats, marks, rate, currency, prior_cost(job))

    def _forget(self, job_id: int, tracked: Tracked) -> None:
        if self.tracked.get(job_id) is tracked:
            del self.tracked[job_id]
        self._idle_check()

    def _idle_check(self) -> None:
        if not self.tracked and self._task is not None and not self._task.done():
            self._task.cancel()

    # the loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = self.config.metrics_interval_s
        while self.tracked:
            began = time.monotonic()
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad round must not end sampling; the next one retries
                log.exception("metrics round failed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    async def sample_once(self) -> None:
        """One round: sample, store, check budgets (and now and then purge old series)."""
        batch = list(self.tracked.items())
        readings = await asyncio.to_thread(self._read, [tr for _, tr in batch])
        now = self.clock()
        writes = []
        for (job_id, tr), reading in zip(batch, readings, strict=True):
            if reading is None or self.tracked.get(job_id) is not tr:
                continue
            tree, gpus = reading
            point = tr.stats.absorb(now, tree, gpus, self.config.idle_gpu_percent)
            keep, thin = tr.stats.keep(point["n"], self.config.metrics_max_points)
            writes.append(SampleWrite(job_id, tr.job.attempt, now, point if keep else None,
                                      self._patch(tr, now), thin))
        done = await asyncio.to_thread(self.store.telemetry.record_samples, writes)
        for job_id, points in done.items():
            if points is not None and job_id in self.tracked:
                self.tracked[job_id].stats.thinned(points)
        await self._check_budgets(now)
        if self.config.metrics_retention_days is not None and now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_S
            cutoff = now - self.config.metrics_retention_days * 86400
            await asyncio.to_thread(self.store.telemetry.purge_metrics, cutoff)

    def _read(self, batch: list[Tracked]) -> list[Any]:
        table: tuple[Any, Any] | None = None  # one /proc scan, only if an attempt needs it
        out: list[Any] = []
        for tr in batch:
            h = tr.handle
            cgroup = h.extra.get("cgroup")
            tree = sample_cgroup(Cgroup.from_dict(cgroup)) if cgroup else None
            if tree is None:
                procs, children = table = table or process_table()
                # The supervisor is not part of the job, its reaped children are.
                root = (h.supervisor_pid, h.supervisor_ctime) if h.supervisor_pid else \
                    (h.pid, h.pid_ctime)
                tree = sample_tree(*root, procs, children, not h.supervisor_pid,
                                   h.pid if h.extra.get("namespaces") else None)
            if tree is None:
                out.append(None)
                continue
            out.append((tree, self._gpus(tr.job)))
            if tr.setup is None:
                fresh = self.store.jobs.get_job(tr.job.id)
                tr.setup = eff.setup_end(fresh.telemetry if fresh else {}, tr.job.attempt,
                                         eff.first_output(h.run_dir))
        return out

    def _gpus(self, job: Job) -> list[dict[str, Any]] | None:
        indices = (job.assigned or {}).get("gpus") or []
        if self.gpu is None or not indices:
            return None
        try:
            return self.gpu.stats(list(indices))
        except Exception as exc:  # the driver went away: no GPU fields rather than made-up ones
            log.warning("GPU stats failed for %s: %s", job.uid, exc)
            return None

    def _patch(self, tr: Tracked, now: float) -> dict[str, Any]:
        patch: dict[str, Any] = {
            "resources": tr.stats.to_telemetry(self.config.metrics_interval_s),
            "cost": self._cost_block(tr, tr.cost_at(now), tr.prior, now),
        }
        if not tr.reported_setup:  # written on the first round, and again once setup ended
            patch["cold_start"] = eff.cold_start(tr.marks, tr.setup, self._cache_hit(tr))
            tr.reported_setup = tr.setup is not None
        return patch

    def _cost_block(self, tr: Tracked, total: float, prior: float, now: float
                    ) -> dict[str, Any]:
        return {"attempt": tr.job.attempt, "rate_per_hour": tr.rate, "currency": tr.currency,
                "prior": round(prior, 6), "accrued": round(total, 6), "as_of": now}

    @staticmethod
    def _cache_hit(tr: Tracked) -> bool | None:
        value = tr.handle.extra.get("cache_hit")
        return value if isinstance(value, bool) else None

    # the end of an attempt -----------------------------------------------------------------------
    def _final(self, tr: Tracked, job: Job, end: float, done: bool) -> dict[str, Any]:
        """The attempt's last telemetry; ``done``: the job ends with it (no retry follows)."""
        setup = tr.setup or eff.setup_end(job.telemetry or {}, job.attempt,
                                          eff.first_output(tr.handle.run_dir))
        cold = eff.cold_start(tr.marks, setup, self._cache_hit(tr))
        total = tr.prior + accrued(tr.rate, job.started_at, end)
        patch: dict[str, Any] = {
            "resources": tr.stats.to_telemetry(self.config.metrics_interval_s),
            "cold_start": cold,
            "cost": self._cost_block(tr, total, tr.prior if done else total, end),
        }
        if done:
            patch["total_cost"] = round(total, 6)
            assigned = job.assigned or {}
            run_time = max(0.0, end - job.started_at) if job.started_at else 0.0
            cost = {"total": round(total, 6), "rate_per_hour": tr.rate, "currency": tr.currency}
            patch["efficiency"] = eff.efficiency(
                tr.stats, list(assigned.get("gpus") or []),
                float(assigned.get("cpus", job.resources.cpus)), run_time, cost, cold,
                self.config.idle_gpu_share,
            )
        return patch

    # budgets -------------------------------------------------------------------------------------
    async def _check_budgets(self, now: float) -> None:
        if not self.tracked:
            return
        running = list(self.tracked.values())
        users, orgs = await asyncio.to_thread(
            self.store.accounts.budgets, [tr.job.user_id for tr in running],
            [tr.job.org_id for tr in running])
        for scope, budgets in (("user", users), ("org", orgs)):
            for owner, budget in budgets.items():
                mine = [tr for tr in running
                        if (tr.job.user_id if scope == "user" else tr.job.org_id) == owner]
                settled = await self._settled_spend(scope, owner, now)
                spent = settled + sum(tr.cost_at(now) for tr in mine)
                ahead = sum(tr.rate for tr in mine if not tr.stopping) \
                    * self.config.metrics_interval_s / 3600.0
                if spent + ahead > budget:
                    await self._over_budget(scope, owner, budget, spent, mine)

    async def _settled_spend(self, scope: str, owner: int, now: float) -> float:
        """Ended jobs' totals plus earlier attempts of jobs not running here (cached)."""
        cached = self._settled.get((scope, owner))
        if cached and now - cached[1] < SPEND_TTL_S:
            return cached[0]
        who = {"user_id": owner} if scope == "user" else {"org_id": owner}
        settled = await asyncio.to_thread(lambda: self.store.telemetry.settled_spend(**who))
        unsettled = await asyncio.to_thread(lambda: self.store.telemetry.unsettled_jobs(**who))
        settled += sum(prior_cost(j) for j in unsettled if j.id not in self.tracked)
        self._settled[(scope, owner)] = (settled, now)
        return settled

    async def _over_budget(self, scope: str, owner: int, budget: float, spent: float,
                           jobs: list[Tracked]) -> None:
        currency = self.prices.currency
        error = {
            "code": "BUDGET_EXCEEDED",
            "message": f"the {scope}'s budget of {budget:g} {currency} would be exceeded "
                       f"({spent:.4f} {currency} spent)",
            "details": {"scope": scope, f"{scope}_id": owner, "budget": budget,
                        "spent": round(spent, 6), "currency": currency},
        }
        for tr in jobs:
            if tr.stopping:
                continue
            tr.stopping = True
            log.info("%s: stopping, %s", tr.job.uid, error["message"])
            try:
                await self.stopper.stop_with_error(tr.job.id, error)
            except Exception:
                log.exception("could not stop %s for its budget", tr.job.uid)
