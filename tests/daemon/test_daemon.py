"""The daemon in-process, with the real local executor and a gate on its launches."""

import asyncio
import time

from jobyard import ids
from jobyard.config import Config
from jobyard.core.inputs import SubmitJob
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.ports import NewJob
from jobyard.core.states import JobState
from jobyard.executors.local import LocalExecutor
from jobyard.runtime import build_runtime
from jobyard.testing import async_wait_until, marked_processes


class GatedExecutor(LocalExecutor):
    """Holds every launch until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def launch(self, spec):
        await self.gate.wait()
        return await super().launch(spec)


async def wait_for(predicate, timeout=15.0):
    return await async_wait_until(predicate, timeout)


def marked(marker: str) -> list[int]:
    return [p.pid for p in marked_processes(marker)]


async def test_cancel_while_launching_stops_the_process_that_starts(tmp_path):
    executor = GatedExecutor()
    config = Config(data_dir=tmp_path, virtual_gpus=1, bootstrap_admin_key="jy_t",
                    tick_interval_s=0.05, kill_grace_s=1)
    rt = build_runtime(config, executor=executor)
    await rt.start()
    try:
        admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
        job, _ = rt.services.jobs.submit(admin, SubmitJob(command="sleep 30"))
        await wait_for(lambda: rt.store.jobs.get_job(job.id).state is JobState.LAUNCHING)
        _, changed = rt.services.jobs.cancel(admin, job.id)
        assert changed and rt.store.jobs.get_job(job.id).state is JobState.CANCELING
        executor.gate.set()
        done = await wait_for(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j)
        assert done.state is JobState.CANCELED and done.cancel_receipt
        assert done.runtime and done.runtime["pid"]  # it did start, and was stopped
        assert marked(f"{job.uid}.1") == []
        assert rt.daemon.allocator.free().gpus == 1  # resources given back after the end
    finally:
        await rt.stop()


class FakeGpuProbe:
    """Stands in for NVML: reports a process on GPU 0 until the test releases it."""

    def __init__(self) -> None:
        self.busy = {0: {4242}}
        self.asked: list[list[int]] = []

    def processes(self, indices):
        self.asked.append(list(indices))
        return set().union(*(self.busy.get(i, set()) for i in indices))


async def test_canceled_waits_until_nvml_shows_its_gpus_free(tmp_path):
    config = Config(data_dir=tmp_path, virtual_gpus=2, bootstrap_admin_key="jy_t",
                    tick_interval_s=0.05, kill_grace_s=1, gpu_release_timeout_s=30)
    rt = build_runtime(config)
    probe = rt.daemon.runner.gpu_probe = FakeGpuProbe()
    await rt.start()
    try:
        admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
        job, _ = rt.services.jobs.submit(admin, SubmitJob(command="sleep 30",
                                                    resources=Resources(gpus=1)))
        await wait_for(lambda: rt.store.jobs.get_job(job.id).state is JobState.RUNNING)
        assert rt.store.jobs.get_job(job.id).assigned["gpus"] == [0]
        rt.services.jobs.cancel(admin, job.id)
        await wait_for(lambda: len(probe.asked) >= 3)  # processes are gone; the GPU is not
        assert marked(f"{job.uid}.1") == []
        assert rt.store.jobs.get_job(job.id).state is JobState.CANCELING
        assert rt.daemon.allocator.free().gpus == 1
        probe.busy.clear()
        done = await wait_for(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j)
        assert done.state is JobState.CANCELED
        assert done.cancel_receipt["gpu_processes_left"] == []
        await wait_for(lambda: rt.daemon.allocator.free().gpus == 2)  # given back right after
    finally:
        await rt.stop()


async def test_a_queued_job_whose_cluster_is_gone_fails_clearly(tmp_path):
    config = Config(data_dir=tmp_path, virtual_gpus=1, bootstrap_admin_key="jy_t",
                    tick_interval_s=0.05)
    rt = build_runtime(config)
    await rt.start()
    try:
        admin = rt.store.accounts.principal_for_key(ids.hash_key("jy_t"))
        # As if submitted while its cluster was being released (the service refuses it later).
        job = Job(id=0, uid="job_orphan", user_id=admin.user_id, org_id=admin.org_id,
                  name="o", command="true", env={}, workdir=None, resources=Resources(),
                  instance_type=None, priority=0, time_limit_s=None, retry=RetryPolicy(),
                  tags=[], state=JobState.QUEUED, created_at=time.time(),
                  cluster_id="cl_released")
        job, _ = rt.store.jobs.create_job(NewJob(job))
        rt.notifier.wake_daemon()
        done = await wait_for(lambda: (j := rt.store.jobs.get_job(job.id)).is_terminal and j)
        assert done.state is JobState.FAILED and done.error["code"] == "CLUSTER_GONE"
    finally:
        await rt.stop()
