"""Cgroups with real processes: limits the kernel enforces, atomic kills, the v2 interface.

They need writable cgroups (root, as here and in CI); elsewhere they are skipped, and the
server says at start and in /healthz that limits are not enforced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from jobyard.executors.cgroups import Cgroup, detect, own_paths
from jobyard.executors.local import LocalExecutor
from tests.executors.helpers import gone, run, sh, texts, wait_until

LAYOUT, WHY = detect()
pytestmark = pytest.mark.skipif(LAYOUT is None, reason=f"no writable cgroups: {WHY}")
MiB = 2**20


@pytest.fixture
async def executor() -> AsyncIterator[LocalExecutor]:
    ex = LocalExecutor(cgroups="auto", pids_max=16)
    await ex.start()
    yield ex
    await ex.close()


def allocate(mib: int) -> list[str]:
    """A job that touches ``mib`` MiB of memory, then says so."""
    return [sys.executable, "-c", f"b = b'x' * ({mib} * 2**20); print('allocated', len(b))"]


def cgroup_of(handle) -> Cgroup:
    return Cgroup.from_dict(handle.extra["cgroup"])


async def test_memory_past_the_limit_is_killed_by_the_kernel(executor, make_spec):
    over = make_spec(allocate(300), limits={"memory_bytes": 64 * MiB})
    under = make_spec(allocate(100), limits={"memory_bytes": 512 * MiB})
    killed, fine = await asyncio.gather(run(executor, over), run(executor, under))

    assert killed.reason == "exited" and killed.signal == signal.SIGKILL
    assert killed.oom_kills and killed.oom_kills >= 1
    assert killed.memory_limit_bytes == 64 * MiB
    assert killed.memory_peak_bytes and killed.memory_peak_bytes >= 60 * MiB
    assert texts(over.run_dir) == []  # it never got to print

    assert (fine.exit_code, fine.oom_kills) == (0, 0)
    assert fine.memory_peak_bytes and fine.memory_peak_bytes >= 100 * MiB
    assert texts(under.run_dir) == [f"allocated {100 * MiB}"]


async def test_cpus_become_a_quota(executor, make_spec):
    """Two processes burn 0.3 s of CPU each: half a CPU takes at least 1.2 s of wall time for
    that, however idle the machine (unlimited on two cores, ~0.3 s)."""
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    spec = make_spec(sh(f"{sys.executable} -c '{burn}' & {sys.executable} -c '{burn}'; wait"),
                     limits={"cpus": 0.5})
    started = time.monotonic()
    handle = await executor.launch(spec)
    quota = Path(cgroup_of(handle).dirs["cpu"], "cpu.cfs_quota_us") if LAYOUT.version == 1 \
        else Path(cgroup_of(handle).dirs[""], "cpu.max")
    assert quota.read_text().split()[0] == "50000"
    status = await executor.wait(handle)
    assert status.exit_code == 0 and status.cpu_seconds and status.cpu_seconds >= 0.6
    assert time.monotonic() - started >= 0.6 / 0.5 * 0.95  # the CFS period's rounding


async def test_a_fork_bomb_stays_inside_its_pids_limit(executor, make_spec):
    bomb = ("import os, time\nforked = refused = 0\n"
            "for _ in range(40):\n"
            "    try: pid = os.fork()\n"
            "    except BlockingIOError: refused += 1; continue\n"
            "    if pid == 0: time.sleep(60); os._exit(0)\n"
            "    forked += 1\n"
            "print(forked, refused, flush=True)\ntime.sleep(60)")
    spec = make_spec([sys.executable, "-c", bomb])
    handle = await executor.launch(spec)
    cgroup = cgroup_of(handle)
    await wait_until(lambda: texts(spec.run_dir), timeout=10)
    forked, refused = map(int, texts(spec.run_dir)[0].split())
    assert (forked, refused) == (15, 25)  # 16 processes, the job's own included
    procs = cgroup.pids()
    assert len(procs) == 16
    await executor.stop(handle, 0.5)
    status = await executor.wait(handle)
    assert status.reason == "stopped"
    assert gone([psutil.Process(p) for p in procs if psutil.pid_exists(p)])
    assert not cgroup.exists()  # removed by the supervisor once it was empty


async def test_the_sweep_kills_what_carries_no_marker(executor, make_spec):
    """An escapee that dropped its environment and its session, orphaned by a dead
    supervisor, is still in the cgroup: the sweep kills it without reading /proc."""
    spec = make_spec(sh("env -i setsid sleep 1000 & echo $!; exec sleep 1000"))
    handle = await executor.launch(spec)
    await wait_until(lambda: texts(spec.run_dir))
    escapee = psutil.Process(int(texts(spec.run_dir)[0]))
    await wait_until(lambda: escapee.cmdline()[:1] == ["sleep"])
    assert "JOBYARD_JOB_MARKER" not in escapee.environ()
    os.kill(handle.supervisor_pid, signal.SIGKILL)
    assert (await executor.wait(handle)).reason == "lost"
    main = psutil.Process(handle.pid)
    assert sorted(executor.sweep(spec.marker)) == sorted([escapee.pid, main.pid])
    assert gone([escapee, main])
    assert not cgroup_of(handle).exists()
    assert executor.sweep(spec.marker) == []


@pytest.fixture
def gpu_nodes(tmp_path: Path) -> str:
    """Device files like two GPUs' (major 195, as NVIDIA's): with no driver behind them, an
    open that the cgroup allows fails with ENXIO, one it denies with EPERM."""
    for index in (0, 1):
        os.mknod(tmp_path / f"nvidia{index}", 0o666 | 0o020000, os.makedev(195, index))
    return str(tmp_path / "nvidia[0-9]*")


async def test_a_job_opens_only_its_own_gpus(make_spec, gpu_nodes):
    if LAYOUT is not None and "devices" not in LAYOUT.parents:
        pytest.skip("no devices controller (cgroup v2 has none: CUDA_VISIBLE_DEVICES only)")
    executor = LocalExecutor(gpu_devices=gpu_nodes)
    await executor.start()
    probe = ("import errno, glob, sys\n"
             "for path in sorted(glob.glob(sys.argv[1])):\n"
             "    try: open(path).close(); print(path[-1], 'opened')\n"
             "    except OSError as e: print(path[-1], errno.errorcode[e.errno])")
    try:
        spec = make_spec([sys.executable, "-c", probe, gpu_nodes], gpus=(0,))
        assert (await run(executor, spec)).exit_code == 0
    finally:
        await executor.close()
    assert texts(spec.run_dir) == ["0 ENXIO", "1 EPERM"]


def test_detect_parents_under_the_servers_own_cgroup():
    assert LAYOUT is not None
    own = own_paths()
    if LAYOUT.version == 1:
        assert LAYOUT.parents["memory"] == f"/sys/fs/cgroup/memory{own['memory']}/jobyard"
        assert {"memory", "cpu", "pids", "freezer"} <= set(LAYOUT.parents)
    assert all(os.path.isdir(p) for p in LAYOUT.parents.values())
    assert detect("off") == (None, "cgroups are turned off in the configuration (cgroups = off)")


# cgroup v2 ----------------------------------------------------------------------------------------
# This machine mounts v2 beside v1 with no controllers on it (they are all v1's): the v2
# membership, freezer, kill and cpu.stat can be tested here, memory.max and pids.max cannot.
UNIFIED = "/sys/fs/cgroup/unified"


@pytest.fixture
def v2_cgroup() -> Cgroup:
    if not os.path.exists(f"{UNIFIED}/cgroup.procs") or not os.access(UNIFIED, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy beside v1")
    cgroup = Cgroup(2, {"": f"{UNIFIED}/jobyard-test-{uuid.uuid4().hex[:12]}"})
    cgroup.create({})
    yield cgroup
    cgroup.kill()
    cgroup.remove()


def test_v2_without_memory_controller_is_refused_with_a_reason():
    with open(f"{UNIFIED}/cgroup.controllers") as f:
        if "memory" in f.read().split():
            pytest.skip("this machine's v2 has a memory controller")
    layout, why = detect("v2")
    assert layout is None and "lacks the memory" in why


def test_v2_freeze_kill_and_cpu(v2_cgroup):
    spin = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", spin],
                             preexec_fn=lambda: v2_cgroup.join(os.getpid()))
    try:
        assert v2_cgroup.pids() == [child.pid]
        assert v2_cgroup.freeze() and v2_cgroup.frozen()
        frozen_cpu = sum(psutil.Process(child.pid).cpu_times()[:2])
        time.sleep(0.3)  # the span measured: a spinning process would use all of it
        assert sum(psutil.Process(child.pid).cpu_times()[:2]) == frozen_cpu
        v2_cgroup.thaw()
        assert not v2_cgroup.frozen()
        assert v2_cgroup.stats()["cpu_seconds"] >= 0
        assert v2_cgroup.kill() == [child.pid]
        assert child.wait(5) == -signal.SIGKILL
        assert v2_cgroup.pids() == [] and v2_cgroup.remove()
    finally:
        child.kill()
        child.wait()


def spares(launcher: int) -> dict[str, list[int]]:
    """A launcher's spare cgroups (by path) and the processes parked in them."""
    parent = Path(LAYOUT.parents.get("freezer") or LAYOUT.parents[""])
    return {str(p): Cgroup(LAYOUT.version, {"": str(p)}).pids()
            for p in parent.glob(f"spare-{launcher}-*")}


async def test_a_launch_takes_the_process_parked_for_it_and_a_new_one_waits(make_spec):
    """Entering a v1 cgroup waits for an RCU grace period: the launcher parks the next job's
    process in a spare cgroup ahead of time, and that cgroup becomes the attempt's."""
    executor = LocalExecutor()
    await executor.start()
    try:
        launcher = executor.launcher_pid
        assert (await run(executor, make_spec(["true"]))).exit_code == 0
        await wait_until(lambda: any(len(p) == 1 for p in spares(launcher).values()))
        (spare, (parked,)), = spares(launcher).items()
        spec = make_spec(sh("echo $$; sleep 1000"), limits={"memory_bytes": 256 * MiB})
        handle = await executor.launch(spec)
        assert handle.pid == parked  # the parked process became the job
        cgroup = cgroup_of(handle)
        assert spare in cgroup.dirs.values()  # its cgroup became the attempt's, with its limits
        assert Path(cgroup.dirs["memory"], "memory.limit_in_bytes").read_text() == f"{256 * MiB}\n"
        await wait_until(lambda: texts(spec.run_dir) == [str(parked)])
        # Without its handle, and its supervisor gone, the sweep still finds it by its marker.
        os.kill(handle.supervisor_pid, signal.SIGKILL)
        assert (await executor.wait(handle)).reason == "lost"
        killed = executor.sweep(spec.marker)
        assert parked in killed and len(killed) == 2  # the shell and its sleep
        assert not cgroup.exists()
        await wait_until(lambda: len(spares(launcher)) == 1 and spare not in spares(launcher))
    finally:
        await executor.close()
    await wait_until(lambda: not spares(launcher))  # the launcher gone, its spare cleans up



async def test_an_attempt_started_without_cgroups_is_still_swept_by_its_marker(make_spec):
    """Started while cgroups were off (its handle has none), swept by a server that has them."""
    plain = LocalExecutor(cgroups="off")
    await plain.start()
    try:
        spec = make_spec(["sleep", "1000"])
        handle = await plain.launch(spec)
        assert "cgroup" not in handle.extra
        os.kill(handle.supervisor_pid, signal.SIGKILL)
        assert (await plain.wait(handle)).reason == "lost"
    finally:
        await plain.close()
    enforcing = LocalExecutor()
    assert enforcing.sweep(spec.marker, handle) == [handle.pid]
