"""The dialect's small translation rules, and the ``resources`` block with NVML readings (the
servers of the other tests have virtual GPUs: no NVML, so no per-GPU measurements)."""

from __future__ import annotations

import pytest

from jobyard.api.dialects.tensorone.runs import RunIn
from jobyard.api.dialects.tensorone.shapes import (
    PRIORITY_NAMES,
    camel_keys,
    include_set,
    priority_name,
    priority_value,
    size,
    tags_from_core,
    tags_to_core,
)
from jobyard.api.dialects.tensorone.status import resources
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.states import JobState
from jobyard.errors import ValidationFailed
from jobyard.telemetry.metrics import AttemptStats, TreeSample

GIB = 1024**3


def test_priorities_tags_sizes_names() -> None:
    assert RunIn.model_fields["priority"].annotation.__args__ == PRIORITY_NAMES
    for name in PRIORITY_NAMES:
        assert priority_name(priority_value(name)) == name
    assert tags_from_core(tags_to_core({"a": "b", "c": "", "d": "e:f"})) == {
        "a": "b", "c": "", "d": "e:f"}
    with pytest.raises(ValidationFailed):
        tags_to_core({"x": "y" * 99})
    assert [size(n) for n in (0, 1023, 1024, 1536, int(2.4 * 1024**2), 40 * GIB)] == [
        "0B", "1023B", "1KB", "1.5KB", "2.4MB", "40GB"]
    assert camel_keys({"exit_code": 1, "time_limit_s": 2, "jobId": 3}) == {
        "exitCode": 1, "timeLimitSeconds": 2, "jobId": 3}
    assert include_set(["logs,metrics", "resources", " logs "]) == {"logs", "metrics",
                                                                   "resources"}
    assert include_set(None) == frozenset()
    with pytest.raises(ValidationFailed):
        include_set(["log"])


def job_with_gpu_samples(state: JobState) -> Job:
    """A job on GPUs 2 and 3 whose attempt the sampler measured twice, with NVML readings in
    the shape :class:`jobyard.telemetry.gpu.NvmlProbe` gives them."""
    stats = AttemptStats(attempt=1, started=100.0)
    for ts, util, used in ((101.0, 40, 10 * GIB), (102.0, 90, 30 * GIB)):
        gpus = [{"index": i, "name": "NVIDIA A100", "utilization": util + i,
                 "memory_used_bytes": used, "memory_total_bytes": 40 * GIB,
                 "temperature_c": 70, "power_w": 280.5} for i in (2, 3)]
        stats.absorb(ts, TreeSample(cpu_seconds=ts - 100.0, rss_bytes=int(1.5 * GIB),
                                    processes=2), gpus)
    return Job(id=1, uid="job_x", user_id=1, org_id=1, name="x", command="x", env={},
               workdir=None, resources=Resources(gpus=2, cpus=2.0, memory_mb=8192),
               instance_type=None, priority=0, time_limit_s=None, retry=RetryPolicy(),
               tags=[], state=state, created_at=99.0, started_at=100.0,
               assigned={"gpus": [2, 3], "cpus": 2.0, "memory_mb": 8192},
               telemetry={"resources": stats.to_telemetry(1.0)})


def test_resources_with_nvml_while_running() -> None:
    res = resources(job_with_gpu_samples(JobState.RUNNING))
    assert res["gpus"] == [
        {"id": "gpu_2", "type": "NVIDIA A100", "utilization": 92, "memoryUsed": "30GB",
         "memoryTotal": "40GB", "temperature": 70, "powerUsage": "280.5W"},
        {"id": "gpu_3", "type": "NVIDIA A100", "utilization": 93, "memoryUsed": "30GB",
         "memoryTotal": "40GB", "temperature": 70, "powerUsage": "280.5W"}]
    assert (res["gpuType"], res["gpuUtilization"], res["gpuCount"]) == ("NVIDIA A100", 92.5, 2)
    assert (res["memoryUsage"], res["memoryTotal"]) == ("1.5GB", "8GB")
    assert res["cpuUsage"] == 50.0  # one CPU-second per second of the two it was given
    assert res["cpu"] == {"utilization": 50.0, "cores": 2, "memory": "8GB"}
    assert "peakGpuUtilization" not in res


def test_resources_with_nvml_once_ended() -> None:
    res = resources(job_with_gpu_samples(JobState.COMPLETED))
    assert res["gpus"] == [
        {"id": "gpu_2", "type": "NVIDIA A100", "memoryTotal": "40GB", "peakUtilization": 92,
         "peakMemoryUsed": "30GB"},
        {"id": "gpu_3", "type": "NVIDIA A100", "memoryTotal": "40GB", "peakUtilization": 93,
         "peakMemoryUsed": "30GB"}]
    assert res["peakGpuUtilization"] == 93 and res["peakMemoryUsage"] == "1.5GB"
    assert res["peakCpuUsage"] == 50.0 and res["totalComputeTime"] == 2.0
    assert not {"memoryUsage", "cpuUsage", "gpuUtilization"} & set(res)
