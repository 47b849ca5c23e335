"""The resource sampler plug-in: the daemon in-process, with the real local executor (GPU
readings from a fake NVML), and the end of an attempt it did not watch."""

import time

import pytest

from jobyard import ids
from jobyard.config import Config
from jobyard.core.inputs import SubmitJob
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from jobyard.daemon.plugins.sampler import ResourceSampler
from jobyard.executors.base import ExitStatus
from jobyard.testing import async_wait_until
from tests.daemon.plugins.conftest import started_runtime


class FakeGpus:
    """Stands in for NVML: GPU i is busy ``util[i]`` percent."""

    def __init__(self, util: dict[int, int]):
        self.util = util

    def stats(self, indices):
        return [{"index": i, "name": "Fake GPU", "utilization": self.util[i],
                 "memory_used_bytes": (i + 1) << 30, "memory_total_bytes": 16 << 30,
                 "temperature_c": 50 + i, "power_w": 100.0 + i} for i in indices]


@pytest.fixture
async def rt(tmp_path, database_url):
    async with started_runtime(tmp_path, database_url, virtual_gpus=2, metrics_interval_s=0.05,
                               price_gpu_hour=3.6) as runtime:
        yield runtime


def sampler_of(rt) -> ResourceSampler:
    return next(h for h in rt.daemon.runner.hooks if isinstance(h, ResourceSampler))


async def wait_for(predicate, timeout=20.0):
    return await async_wait_until(predicate, timeout)


async def run_job(rt, tmp_path, gpus: int, before: str = ""):
    """A job that waits for a file; it is let go once it has a few samples."""
    admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
    go = tmp_path / f"go-{ids.random_token(6)}"
    cmd = f"{before}while [ ! -e {go} ]; do sleep 0.02; done"
    job, _ = rt.services.jobs.submit(admin, SubmitJob(command=cmd, resources=Resources(gpus=gpus)))
    await wait_for(lambda: rt.store.jobs.get_job(job.id).telemetry.get("resources", {})
                   .get("samples", 0) >= 4)
    go.touch()
    return await wait_for(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j)


async def test_efficiency_flags_the_gpu_that_sat_idle(rt, tmp_path):
    sampler_of(rt).gpu = FakeGpus({0: 90, 1: 2})
    done = await run_job(rt, tmp_path, gpus=2)
    assert done.state is JobState.COMPLETED
    eff = done.telemetry["efficiency"]
    assert eff["idle_gpus"] == [1]
    busy, idle = eff["gpus"]
    assert busy["idle"] is False and busy["avg_utilization"] == busy["peak_utilization"] == 90
    assert idle["idle"] is True and idle["idle_fraction"] == 1.0
    assert idle["peak_memory_used_bytes"] == 2 << 30 and idle["memory_total_bytes"] == 16 << 30
    assert busy["name"] == "Fake GPU"
    assert eff["gpu_hours"] == pytest.approx(2 * eff["run_time_s"] / 3600, abs=1e-6)
    assert done.telemetry["total_cost"] == pytest.approx(3.6 * 2 * eff["run_time_s"] / 3600,
                                                         abs=2e-6)
    point = rt.store.telemetry.metric_series(done.id, 1)[-1][1]
    assert point["gpus"][1] == {"index": 1, "name": "Fake GPU", "utilization": 2,
                                "memory_used_bytes": 2 << 30, "memory_total_bytes": 16 << 30,
                                "temperature_c": 51, "power_w": 101.0}


async def test_without_nvml_gpu_fields_are_absent(rt, tmp_path):
    assert sampler_of(rt).gpu is None  # virtual GPUs: nothing to ask
    done = await run_job(rt, tmp_path, gpus=1)
    eff, res = done.telemetry["efficiency"], done.telemetry["resources"]
    assert "gpus" not in eff and "idle_gpus" not in eff and "gpus" not in res
    assert eff["gpu_hours"] > 0  # GPU-hours are of the GPUs it held, measured or not
    assert all("gpus" not in data for _, data in rt.store.telemetry.metric_series(done.id, 1))


async def test_cold_start_phases_end_setup_at_the_first_output(rt, tmp_path):
    done = await run_job(rt, tmp_path, gpus=0, before="sleep 0.3; echo hello; ")
    cold = done.telemetry["cold_start"]
    assert cold["occurred"] is True and cold["setup_ended_by"] == "log"
    phases = cold["phases"]
    # Setup counts from when the daemon recorded `running`, a little after the process began.
    assert 0.2 <= phases["setup_s"] < 5 and phases["launch_s"] >= 0 and phases["queue_wait_s"] >= 0
    assert cold["duration_s"] == pytest.approx(phases["launch_s"] + phases["setup_s"], abs=2e-3)
    assert "cache_hit" not in cold  # the local executor has no cache to hit
    assert done.telemetry["efficiency"]["cold_start"] == cold


class NoStops:
    async def stop_with_error(self, job_id, error):
        raise AssertionError("nothing is over budget here")


def new_job(store) -> Job:
    store.accounts.create_org("o")
    user = store.accounts.create_user("u", "o")
    job = Job(id=0, uid=ids.job_uid(), user_id=user["id"], org_id=user["org_id"], name="j",
              command="true", env={}, workdir=None, resources=Resources(), instance_type=None,
              priority=0, time_limit_s=None, retry=RetryPolicy(), tags=[],
              state=JobState.QUEUED, created_at=time.time())
    return store.jobs.create_job(NewJob(job))[0]


async def test_an_attempt_that_ended_unwatched_still_gets_its_cost(store, tmp_path):
    config = Config(data_dir=tmp_path, price_cpu_hour=36.0)
    sampler = ResourceSampler(config, store, NoStops())
    job = new_job(store)
    assigned = {"gpus": [], "cpus": 2.0, "memory_mb": 0}
    store.jobs.apply([Transition(job.id, JobState.LAUNCHING, {"assigned": assigned})])
    [job] = store.jobs.apply([Transition(job.id, JobState.RUNNING, {"started_at": 1000.0})])
    patch = await sampler.ending(job, ExitStatus("exited", 0, ended_at=1010.0), True)
    assert patch["total_cost"] == pytest.approx(72.0 * 10 / 3600)
    assert patch["efficiency"]["run_time_s"] == 10 and patch["efficiency"]["samples"] == 0
    assert patch["cost"]["prior"] == 0 and patch["cold_start"]["occurred"] is True
    # An attempt that is retried carries its cost forward instead.
    retried = await sampler.ending(job, ExitStatus("exited", 3, ended_at=1010.0), False)
    assert "total_cost" not in retried and "efficiency" not in retried
    assert retried["cost"]["prior"] == pytest.approx(0.2)
