"""What a job costs: prices from config, a rate per hour, accrued and total cost. Pure.

The rate of an attempt is the price per hour of its ``instance_type`` when config prices that
type, else ``price_gpu_hour * gpus + price_cpu_hour * cpus`` of what it was given (its
``assigned`` resources; what it asked for before it was admitted). Cost accrues from
``started_at`` (the process runs) to the end of the attempt: ``rate * seconds / 3600``.
Retried attempts add up: an ended attempt's cost is carried in ``telemetry.cost.prior``.

Telemetry keys written by the sampler (``jobyard.daemon.plugins.sampler``) and read here:
``cost = {"rate_per_hour", "currency", "prior", "accrued"}`` (``accrued`` as of the last
sample) and ``total_cost`` (fixed when the job ends).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jobyard.core.models import Job
from jobyard.core.states import JobState

# States in which a started attempt holds its resources and so accrues cost.
ACCRUING = frozenset({JobState.RUNNING, JobState.PAUSED, JobState.CANCELING})


@dataclass(frozen=True)
class Prices:
    gpu_hour: float = 0.0
    cpu_hour: float = 0.0
    instance_types: dict[str, float] = field(default_factory=dict)
    currency: str = "USD"

    @classmethod
    def from_config(cls, config: Any) -> Prices:
        return cls(
            gpu_hour=config.price_gpu_hour,
            cpu_hour=config.price_cpu_hour,
            instance_types=dict(config.instance_prices),
            currency=config.currency,
        )


def rate_per_hour(job: Job, prices: Prices) -> float:
    """The price of one hour of this job's current attempt."""
    if job.instance_type and job.instance_type in prices.instance_types:
        return float(prices.instance_types[job.instance_type])
    assigned = job.assigned or {}
    gpus = len(assigned["gpus"]) if "gpus" in assigned else job.resources.gpus
    cpus = float(assigned.get("cpus", job.resources.cpus))
    return prices.gpu_hour * gpus + prices.cpu_hour * cpus


def accrued(rate: float, start: float | None, end: float | None) -> float:
    """Cost of ``rate`` per hour from ``start`` to ``end`` (0 if it never started)."""
    if start is None or end is None or end <= start:
        return 0.0
    return rate * (end - start) / 3600.0


def attempt_rate(job: Job, prices: Prices) -> tuple[float, str]:
    """The rate and currency in force for this attempt: fixed when it started, if recorded."""
    block = (job.telemetry or {}).get("cost") or {}
    if "rate_per_hour" in block and block.get("attempt") == job.attempt:
        return float(block["rate_per_hour"]), str(block.get("currency", prices.currency))
    return rate_per_hour(job, prices), prices.currency


def prior_cost(job: Job) -> float:
    """What earlier attempts of this job cost."""
    return float(((job.telemetry or {}).get("cost") or {}).get("prior", 0.0))


def cost_view(job: Job, now: float, prices: Prices) -> dict[str, Any]:
    """The job's cost as of ``now``: ``accrued`` grows while it runs; ``total`` is set (and
    equal to ``accrued``) once it has ended."""
    rate, currency = attempt_rate(job, prices)
    prior = prior_cost(job)
    if job.state.is_terminal:
        total = (job.telemetry or {}).get("total_cost")
        if total is None:  # ended without the sampler (e.g. canceled before it started)
            total = prior + accrued(rate, job.started_at, job.finished_at)
        total = round(float(total), 6)
        return {"currency": currency, "rate_per_hour": rate, "accrued": total, "total": total}
    running = job.state in ACCRUING
    now_cost = prior + (accrued(rate, job.started_at, now) if running else 0.0)
    return {"currency": currency, "rate_per_hour": rate, "accrued": round(now_cost, 6),
            "total": None}


def spend(settled: float, active: Iterable[Job], now: float, prices: Prices) -> float:
    """An owner's spend: the total of its ended jobs plus what its active jobs accrued."""
    return settled + sum(float(cost_view(job, now, prices)["accrued"]) for job in active)
