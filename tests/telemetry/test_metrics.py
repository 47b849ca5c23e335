"""Resource metrics: process trees with psutil, the NVML seam, downsampling, cold-start marks
and stats that resume after a restart (the sampler plug-in itself: tests/daemon/plugins/)."""

import itertools
import os
import signal
import subprocess
import sys
import time
import types

import psutil
import pytest

from jobyard import ids
from jobyard.core.models import Resources
from jobyard.core.ports import NewJob, SampleWrite
from jobyard.core.states import JobState
from jobyard.store import migrate
from jobyard.store.sql import SqlStore
from jobyard.telemetry.efficiency import attempt_marks
from jobyard.telemetry.gpu import gpu_stats
from jobyard.telemetry.metrics import AttemptStats, TreeSample, process_table, sample_tree
from jobyard.testing import wait_until

PY = sys.executable
BURN = "import time\nt = time.time()\nwhile time.time() - t < 60: pass"


def tree_of(pid: int, include_root: bool = True) -> TreeSample | None:
    procs, children = process_table()
    return sample_tree(pid, psutil.Process(pid).create_time(), procs, children, include_root)


@pytest.fixture
def spawn():
    started: list[subprocess.Popen] = []

    def run(script: str) -> subprocess.Popen:
        proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
        started.append(proc)
        return proc

    yield run
    for proc in started:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_tree_shows_the_cpu_and_memory_of_all_its_processes(spawn, tmp_path):
    ready = tmp_path / "ready"
    hold = f"x = b'x' * (64 << 20); open({str(ready)!r}, 'w').close(); import time; time.sleep(60)"
    proc = spawn(f'{PY} -c "{BURN}" & {PY} -c "{hold}" & wait')
    wait_until(ready.exists)
    stats = AttemptStats(attempt=1, started=psutil.Process(proc.pid).create_time())
    first = wait_until(lambda: tree_of(proc.pid))
    stats.absorb(time.time(), first, None)
    # The next sample once the tree has burnt another 0.3 s of CPU.
    later = wait_until(lambda: (s := tree_of(proc.pid)).cpu_seconds >= first.cpu_seconds + 0.3
                       and s, timeout=20)
    point = stats.absorb(time.time(), later, None)
    assert point["processes"] == 3  # the shell and both children
    assert point["cpu_percent"] > 30  # one core busy is 100
    assert point["rss_bytes"] >= 64 << 20 and stats.rss.peak >= 64 << 20
    assert "gpus" not in point and not stats.gpus


def test_cpu_of_children_that_already_exited_still_counts(spawn, tmp_path):
    done = tmp_path / "done"
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    proc = spawn(f'{PY} -c "{burn}"; touch {done}; sleep 60')
    wait_until(done.exists, timeout=20)
    # The burner is gone; its CPU time lives on in its reaper's (the shell's) children times.
    assert tree_of(proc.pid).cpu_seconds >= 0.25  # clock ticks are 10 ms
    assert tree_of(proc.pid, include_root=False).cpu_seconds >= 0.25


def test_a_helper_in_the_tree_counts_only_what_it_reaped(spawn, tmp_path):
    done = tmp_path / "done"
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    hold = "x = b'x' * (64 << 20); import time; time.sleep(60)"
    # The shell stands for a job's pid 1 (Jobyard's): it reaps the burner and the holder is
    # its child; only their CPU and memory are the job's.
    proc = spawn(f'{PY} -c "{hold}" & {PY} -c "{burn}"; touch {done}; wait')
    wait_until(done.exists, timeout=20)
    procs, children = process_table()
    whole = sample_tree(proc.pid, None, procs, children, True)
    without = sample_tree(proc.pid, None, procs, children, True, helper=proc.pid)
    shell = psutil.Process(proc.pid)
    assert whole.rss_bytes - without.rss_bytes == shell.memory_info().rss
    assert without.processes == whole.processes - 1 == 1
    assert without.rss_bytes >= 64 << 20
    assert without.cpu_seconds >= 0.25  # the burner the shell reaped still counts


def test_a_reused_pid_is_not_sampled():
    procs, children = process_table()
    me = os.getpid()
    assert sample_tree(me, psutil.Process(me).create_time() - 100, procs, children, True) is None
    assert sample_tree(2**22 + 7, None, procs, children, True) is None


# the NVML seam ---------------------------------------------------------------------------------
def fake_nvml(unsupported: dict[int, set[str]]) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.nvmlInit = lambda: None

    def query(name, value):
        def call(handle, *args):
            if name in unsupported.get(handle, set()):
                raise nvml.NVMLError("Not Supported")
            return value
        return call

    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = query("name", b"NVIDIA A100")
    nvml.nvmlDeviceGetUtilizationRates = query("util", types.SimpleNamespace(gpu=87, memory=40))
    nvml.nvmlDeviceGetMemoryInfo = query(
        "memory", types.SimpleNamespace(used=35 << 30, total=40 << 30, free=5 << 30))
    nvml.nvmlDeviceGetTemperature = query("temperature", 72)
    nvml.nvmlDeviceGetPowerUsage = query("power", 280_123)  # milliwatts
    return nvml


def test_nvml_stats_give_what_the_gpu_supports_and_nothing_else(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml({1: {"power", "temperature", "util"}}))
    probe = gpu_stats("nvml")
    assert probe.stats([0]) == [{
        "index": 0, "name": "NVIDIA A100", "utilization": 87, "memory_used_bytes": 35 << 30,
        "memory_total_bytes": 40 << 30, "temperature_c": 72, "power_w": 280.1,
    }]
    assert probe.stats([1]) == [{"index": 1, "name": "NVIDIA A100",
                                 "memory_used_bytes": 35 << 30, "memory_total_bytes": 40 << 30}]


def test_without_nvml_there_are_no_gpu_stats(monkeypatch):
    assert gpu_stats("virtual") is None and gpu_stats("none") is None
    broken = fake_nvml({})
    broken.nvmlInit = lambda: (_ for _ in ()).throw(RuntimeError("driver gone"))
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert gpu_stats("nvml") is None


# downsampling, in the store ------------------------------------------------------------------
@pytest.fixture
def store(engines):
    migrate.upgrade(engines.write)
    store = SqlStore(engines)
    store.accounts.create_org("o")
    user = store.accounts.create_user("u", "o")
    return store, user


def new_job(store: SqlStore, user: dict):
    from jobyard.core.models import Job, RetryPolicy

    job = Job(id=0, uid=ids.job_uid(), user_id=user["id"], org_id=user["org_id"], name="j",
              command="true", env={}, workdir=None, resources=Resources(), instance_type=None,
              priority=0, time_limit_s=None, retry=RetryPolicy(), tags=[],
              state=JobState.QUEUED, created_at=time.time())
    return store.jobs.create_job(NewJob(job))[0]


def test_the_series_is_thinned_evenly_and_stays_bounded(store):
    store, user = store
    job = new_job(store, user)
    stats = AttemptStats(attempt=1, started=0.0)
    for i in range(100):
        point = stats.absorb(float(i + 1), TreeSample(i * 0.5, 1000 + i, 1), None)
        keep, thin = stats.keep(point["n"], 10)
        write = SampleWrite(job.id, 1, float(i + 1), point if keep else None,
                            {"resources": {"samples": stats.samples}}, thin)
        if (left := store.telemetry.record_samples([write])[job.id]) is not None:
            stats.thinned(left)
    ns = [data["n"] for _, data in store.telemetry.metric_series(job.id, 1)]
    assert 5 <= len(ns) <= 10 and len(ns) == stats.points
    assert ns[0] == 0 and {b - a for a, b in itertools.pairwise(ns)} == {stats.stride}
    assert ns[-1] > 99 - stats.stride  # the series reaches the newest samples
    assert store.jobs.get_job(job.id).telemetry["resources"] == {"samples": 100}
    # Peaks and averages use every sample, stored or not.
    assert stats.rss.peak == 1099 and stats.cpu.n == 100


def test_samples_of_an_ended_job_or_another_attempt_are_dropped(store):
    store, user = store
    job = new_job(store, user)
    assert store.telemetry.record_samples([SampleWrite(job.id, 2, 1.0, {"n": 0}, {"x": 1})]) == {}
    store.jobs.apply([_to(job.id, JobState.CANCELED)])
    assert store.telemetry.record_samples([SampleWrite(job.id, 1, 1.0, {"n": 0}, {"x": 1})]) == {}
    assert store.telemetry.metric_series(job.id, 1) == []
    assert "x" not in store.jobs.get_job(job.id).telemetry


def _to(job_id: int, state: JobState):
    from jobyard.core.ports import Transition

    return Transition(job_id, state, {})


def test_attempt_marks_start_a_retry_at_its_retry_time():
    events = [(1.0, {"to": "queued"}), (2.0, {"to": "launching"}), (3.0, {"to": "running"}),
              (9.0, {"to": "queued", "next_retry_at": 15.0}), (16.5, {"to": "launching"}),
              (17.0, {"to": "running"}), (18.0, {"to": "paused"}), (19.0, {"to": "running"})]
    assert attempt_marks(events) == {"eligible": 15.0, "launching": 16.5, "running": 17.0}
    assert attempt_marks(events[:1]) == {}


def test_stats_resume_from_telemetry_after_a_restart():
    stats = AttemptStats(attempt=2, started=100.0)
    stats.absorb(101.0, TreeSample(0.5, 2000, 2), [{"index": 0, "utilization": 5}], 10)
    stats.absorb(102.0, TreeSample(1.5, 3000, 2), [{"index": 0, "utilization": 50}], 10)
    stats.stride = 4
    again = AttemptStats.from_telemetry(2, 0.0, stats.to_telemetry(1.0), points=7)
    assert (again.samples, again.stride, again.points, again.started) == (2, 4, 7, 100.0)
    assert again.cpu == stats.cpu and again.rss == stats.rss
    assert again.gpu_summary() == stats.gpu_summary() == [{
        "index": 0, "avg_utilization": 27.5, "peak_utilization": 50, "idle_fraction": 0.5}]
    assert again.absorb(103.0, TreeSample(2.5, 1000, 1), None)["cpu_percent"] == 100.0
    # Another attempt's telemetry starts afresh.
    assert AttemptStats.from_telemetry(3, 0.0, stats.to_telemetry(1.0)).samples == 0


def test_the_cpu_counted_at_the_end_completes_what_the_samples_saw():
    stats = AttemptStats(attempt=1, started=100.0)
    stats.absorb(101.0, TreeSample(cpu_seconds=0.19, rss_bytes=1, processes=1), None)
    stats.account_cpu(101.4, 0.31)  # the job's own count, after its last sample
    assert stats.to_telemetry(1.0)["cpu_mark"] == [101.4, 0.31]
    stats.account_cpu(102.0, 0.2)  # never less than what was already seen
    assert stats.to_telemetry(1.0)["cpu_mark"] == [101.4, 0.31]
    unsampled = AttemptStats(attempt=1, started=100.0)
    unsampled.account_cpu(100.2, 0.05)  # ended before its first sample
    assert unsampled.to_telemetry(1.0)["cpu_mark"] == [100.2, 0.05]
