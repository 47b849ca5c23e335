"""Prices, rates, accrued and total cost, spend: pure functions."""

import pytest

from jobyard.config import Config
from jobyard.core.cost import Prices, accrued, cost_view, rate_per_hour, spend
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.states import JobState

PRICES = Prices(gpu_hour=2.0, cpu_hour=0.5, instance_types={"1xH100": 3.0}, currency="EUR")


def job(state=JobState.RUNNING, started=1000.0, finished=None, telemetry=None, **kw) -> Job:
    return Job(
        id=1, uid="job_x", user_id=1, org_id=1, name="x", command="true", env={}, workdir=None,
        resources=kw.pop("resources", Resources(gpus=1, cpus=2)),
        instance_type=kw.pop("instance_type", None), priority=0, time_limit_s=None,
        retry=RetryPolicy(), tags=[], state=state, created_at=900.0, started_at=started,
        finished_at=finished, telemetry=telemetry or {}, **kw,
    )


def test_rate_from_gpu_and_cpu_prices_of_what_was_assigned():
    assert rate_per_hour(job(), PRICES) == 2.0 * 1 + 0.5 * 2
    given = job(assigned={"gpus": [0, 1, 2], "cpus": 4.0, "memory_mb": 0})
    assert rate_per_hour(given, PRICES) == 2.0 * 3 + 0.5 * 4


def test_a_priced_instance_type_sets_the_rate():
    assert rate_per_hour(job(instance_type="1xH100"), PRICES) == 3.0
    assert rate_per_hour(job(instance_type="unpriced"), PRICES) == 3.0  # gpu + cpu prices


def test_accrued_is_rate_times_hours_and_zero_before_the_start():
    assert accrued(3.6, 100.0, 100.0 + 3600) == pytest.approx(3.6)
    assert accrued(3.6, 100.0, 110.0) == pytest.approx(0.01)
    assert accrued(3.6, None, 110.0) == 0.0 and accrued(3.6, 100.0, 90.0) == 0.0


def test_cost_grows_while_running_then_is_fixed():
    running = job()
    early = cost_view(running, 1000.0 + 360, PRICES)
    later = cost_view(running, 1000.0 + 720, PRICES)
    assert early == {"currency": "EUR", "rate_per_hour": 3.0, "accrued": 0.3, "total": None}
    assert later["accrued"] == pytest.approx(0.6)
    done = job(JobState.COMPLETED, finished=1000.0 + 720, telemetry={"total_cost": 0.61})
    for now in (2000.0, 99999.0):
        assert cost_view(done, now, PRICES) == {
            "currency": "EUR", "rate_per_hour": 3.0, "accrued": 0.61, "total": 0.61}


def test_the_rate_recorded_at_start_wins_and_earlier_attempts_add_up():
    tele = {"cost": {"attempt": 2, "rate_per_hour": 7.2, "currency": "USD", "prior": 1.5}}
    second = job(attempt=2, telemetry=tele)
    view = cost_view(second, 1000.0 + 500, PRICES)
    assert view["rate_per_hour"] == 7.2 and view["currency"] == "USD"
    assert view["accrued"] == pytest.approx(1.5 + 1.0)
    # A block from an earlier attempt gives its prior cost but not its rate.
    third = job(attempt=3, telemetry=tele)
    assert cost_view(third, 1000.0, PRICES)["rate_per_hour"] == 3.0


def test_jobs_that_never_ran_cost_nothing_and_a_queued_retry_keeps_its_prior():
    assert cost_view(job(JobState.QUEUED, started=None), 5000.0, PRICES)["accrued"] == 0.0
    canceled = job(JobState.CANCELED, started=None, finished=1200.0)
    assert cost_view(canceled, 5000.0, PRICES)["total"] == 0.0
    retry = job(JobState.QUEUED, started=None, telemetry={"cost": {"prior": 0.25}})
    assert cost_view(retry, 5000.0, PRICES)["accrued"] == 0.25


def test_spend_adds_settled_totals_and_live_costs():
    active = [job(), job(JobState.QUEUED, started=None, telemetry={"cost": {"prior": 0.5}})]
    assert spend(10.0, active, 1000.0 + 3600, PRICES) == pytest.approx(10.0 + 3.0 + 0.5)


def test_prices_come_from_config(tmp_path):
    config = Config(data_dir=tmp_path, price_gpu_hour=1.5, price_cpu_hour=0.1,
                    instance_prices={"cpu-2": 0.2}, currency="GBP")
    assert Prices.from_config(config) == Prices(1.5, 0.1, {"cpu-2": 0.2}, "GBP")


def test_a_paused_job_keeps_accruing_its_resources_stay_held():
    paused = job(state=JobState.PAUSED, paused_at=1500.0, paused_s=10.0)
    assert cost_view(paused, 1000.0 + 3600, PRICES)["accrued"] == pytest.approx(3.0)
    assert cost_view(paused, 1000.0 + 3600, PRICES) == cost_view(job(), 1000.0 + 3600, PRICES)
