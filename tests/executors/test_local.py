"""LocalExecutor with real processes: launching, logging, stopping, adoption and sweeping.

Run this file directly (``python tests/executors/test_local.py``) for a throughput check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from pathlib import Path

import psutil
import pytest

from jobyard.errors import LaunchError
from jobyard.executors.base import Handle, LaunchSpec
from jobyard.executors.local import LocalExecutor
from jobyard.testing import is_paused
from tests.executors.helpers import gone, log_lines, run, sh, texts, wait_until


@pytest.fixture(params=["off", "auto"], ids=["plain", "cgroups"])
async def executor(request: pytest.FixtureRequest) -> AsyncIterator[LocalExecutor]:
    """Every behaviour here holds with and without a cgroup per attempt (where the machine
    has writable cgroups, as this one and CI do; otherwise both runs are plain)."""
    ex = LocalExecutor(cgroups=request.param)
    await ex.start()
    yield ex
    await ex.close()


async def test_exit_codes_are_recorded(executor, make_spec):
    ok, failed, killed = await asyncio.gather(
        run(executor, make_spec(["true"])),
        run(executor, make_spec(sh("exit 3"))),
        run(executor, make_spec(sh("kill -9 $$"))),
    )
    assert (ok.reason, ok.exit_code, ok.signal, ok.receipt) == ("exited", 0, None, None)
    assert (failed.reason, failed.exit_code) == ("exited", 3)
    assert (killed.reason, killed.exit_code, killed.signal) == ("exited", None, 9)
    assert abs(ok.ended_at - time.time()) < 60


async def test_the_exit_status_counts_the_cpu_of_every_process_of_the_job(executor, make_spec):
    burn = ("import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end:\n    pass")
    # The job burns 0.3 s of CPU in a grandchild, then in itself; the supervisor reaped both.
    both = await run(executor, make_spec(sh(f"{sys.executable} -c '{burn}' & "
                                            f"{sys.executable} -c '{burn}'; wait")))
    idle = await run(executor, make_spec(["true"]))
    assert both.reason == "exited" and both.exit_code == 0
    assert both.cpu_seconds is not None and both.cpu_seconds >= 0.6
    assert idle.cpu_seconds is not None and idle.cpu_seconds < 0.3


async def test_a_missing_command_inside_a_shell_is_a_normal_exit(executor, make_spec):
    spec = make_spec(sh("no-such-command-jobyard"))
    status = await run(executor, spec)
    assert (status.reason, status.exit_code) == ("exited", 127)
    assert any("not found" in t for t in texts(spec.run_dir, "e"))


async def test_log_has_both_streams_with_timestamps(executor, make_spec):
    spec = make_spec(sh("printf 'out1\\nout2\\n'; echo err1 >&2; printf 'no newline'"))
    before = time.time()
    await run(executor, spec)
    lines = log_lines(spec.run_dir)
    assert texts(spec.run_dir, "o") == ["out1", "out2", "no newline"]
    assert texts(spec.run_dir, "e") == ["err1"]
    assert all(before <= ts <= time.time() for ts, _, _ in lines)
    assert re.fullmatch(r"\d+\.\d{6}", Path(spec.run_dir, "log").read_text().split("\t")[0])


async def test_long_lines_are_split(executor, make_spec):
    spec = make_spec(sh("head -c 150000 /dev/zero | tr '\\0' a; echo; echo next"))
    await run(executor, spec)
    assert [len(t) for t in texts(spec.run_dir)] == [65536, 65536, 150000 - 2 * 65536, 4]


async def test_log_cap_truncates_without_blocking_the_job(executor, make_spec):
    spec = make_spec(sh("yes | head -c 5000000"), cap=10_000)
    status = await run(executor, spec)
    assert (status.reason, status.exit_code) == ("exited", 0)
    lines = log_lines(spec.run_dir)
    assert lines[-1][1:] == ("x", "[jobyard: log truncated at 10000 bytes]")
    assert all(text == "y" for _, s, text in lines[:-1])
    assert os.path.getsize(Path(spec.run_dir, "log")) <= 10_000 + 100


async def test_env_and_cwd_are_applied(executor, make_spec, tmp_path):
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    spec = make_spec(
        sh('echo "$FOO"; pwd; echo "${HOME:-unset}"'), env={"FOO": "bar baz"}, cwd=str(workdir)
    )
    await run(executor, spec)
    assert texts(spec.run_dir) == ["bar baz", str(workdir), "unset"]


@pytest.mark.parametrize("case", ["missing name", "missing path", "bad cwd", "not executable"])
async def test_launch_failures_raise_launch_error(executor, make_spec, tmp_path, case):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    argv, cwd, reason = {
        "missing name": (["no-such-command-jobyard"], None, "No such file"),
        "missing path": (["/nonexistent/bin/tool"], None, "No such file"),
        "bad cwd": (["true"], str(tmp_path / "nowhere"), "working directory"),
        "not executable": ([str(script)], None, "Permission denied"),
    }[case]
    spec = make_spec(argv, cwd=cwd)
    with pytest.raises(LaunchError, match=reason):
        await executor.launch(spec)
    handle, status = executor.recover(spec.run_dir)
    assert handle is None and status is not None and status.reason == "launch_failed"


async def test_unusable_run_dir_or_empty_command_raise_launch_error(executor, make_spec, tmp_path):
    (tmp_path / "file").write_text("")
    spec = make_spec(["true"])
    with pytest.raises(LaunchError, match=r"cannot start job: .*Not a directory"):
        await executor.launch(replace(spec, run_dir=str(tmp_path / "file" / "run")))
    with pytest.raises(LaunchError, match="empty command"):
        await executor.launch(replace(spec, argv=[]))


async def test_stop_a_job_that_obeys_sigterm(executor, make_spec):
    spec = make_spec(["sleep", "1000"])
    handle = await executor.launch(spec)
    await executor.stop(handle, 5.0)
    status = await executor.wait(handle)
    assert (status.reason, status.signal) == ("stopped", signal.SIGTERM)
    receipt = status.receipt
    assert receipt["signals"] == ["SIGTERM"] and receipt["sigterm_obeyed"] is True
    assert receipt["processes_killed"] == [] and receipt["processes_signaled"] == 1
    assert receipt["time_to_stop_s"] < 2
    assert not psutil.pid_exists(handle.pid)


STUBBORN_JOB = """
trap '' TERM
sleep 1000 &
setsid sleep 1000 &
echo "setsid $!"
( sleep 1000 & echo "orphan $!" )
echo ready
wait
"""


async def test_stop_kills_a_stubborn_job_tree_including_escapees(executor, make_spec):
    spec = make_spec(["bash", "-c", STUBBORN_JOB], grace=30.0)
    handle = await executor.launch(spec)
    await wait_until(lambda: "ready" in texts(spec.run_dir))
    pids = dict(t.split() for t in texts(spec.run_dir) if t != "ready")
    setsid_pid, orphan_pid = int(pids["setsid"]), int(pids["orphan"])
    # escaped the job's session (`setsid` may not have run yet when its pid was printed)
    await wait_until(lambda: os.getsid(setsid_pid) != os.getsid(handle.pid))
    await wait_until(lambda: psutil.Process(orphan_pid).ppid() == handle.supervisor_pid)
    procs = psutil.Process(handle.supervisor_pid).children(recursive=True)
    assert {handle.pid, setsid_pid, orphan_pid} <= {p.pid for p in procs} and len(procs) == 4

    await executor.stop(handle, 0.3)  # overrides the spec's 30 s
    status = await executor.wait(handle)

    assert gone(procs)
    assert status.reason == "stopped" and status.signal == signal.SIGKILL
    receipt = status.receipt
    assert receipt["signals"] == ["SIGTERM", "SIGKILL"] and receipt["sigterm_obeyed"] is False
    assert set(receipt["processes_killed"]) == {p.pid for p in procs}
    assert receipt["processes_signaled"] == 4
    assert 0.3 <= receipt["time_to_stop_s"] < 3


async def test_processes_left_behind_by_the_main_process_are_killed(executor, make_spec):
    spec = make_spec(sh("sleep 1000 & echo $!; setsid sleep 1000 & echo $!; exit 4"))
    status = await run(executor, spec)
    assert (status.reason, status.exit_code) == ("exited", 4)
    assert status.receipt and status.receipt["sigterm_obeyed"] is True
    assert not any(psutil.pid_exists(pid) for pid in map(int, texts(spec.run_dir)))


async def test_stop_after_exit_keeps_the_exit_status(executor, make_spec):
    handle = await executor.launch(make_spec(sh("exit 2")))
    first = await executor.wait(handle)
    await executor.stop(handle, 1.0)
    assert await executor.wait(handle) == first and first.exit_code == 2


async def test_a_restarted_server_adopts_a_running_job(make_spec):
    spec = make_spec(sh("for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done; exit 7"))
    first = LocalExecutor()
    await first.start()
    handle = await first.launch(spec)
    await wait_until(lambda: texts(spec.run_dir))
    os.kill(first.launcher_pid, signal.SIGKILL)  # the server dies: its launcher goes too
    await wait_until(lambda: first.launcher_pid is None)
    await first.close()

    second = LocalExecutor()
    assert second.adopt(Handle.from_dict(json.loads(json.dumps(handle.to_dict()))))
    status = await second.wait(handle)
    assert (status.reason, status.exit_code) == ("exited", 7)
    assert texts(spec.run_dir) == [f"line {i}" for i in range(1, 6)]
    assert second.recover(spec.run_dir) == (handle, status)
    assert not second.adopt(handle)


SERVER = """
import asyncio, json, sys
from jobyard.executors.base import LaunchSpec
from jobyard.executors.local import LocalExecutor

async def main():
    executor = LocalExecutor()
    handle = await executor.launch(LaunchSpec(**json.loads(sys.argv[1])))
    print(json.dumps([executor.launcher_pid, handle.to_dict()]), flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
"""


async def test_jobs_outlive_a_killed_server(make_spec):
    spec = make_spec(sh("echo started; sleep 0.3; echo done; exit 5"))
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, json.dumps(asdict(spec))], stdout=subprocess.PIPE
    )
    try:
        launcher_pid, data = json.loads(await asyncio.to_thread(server.stdout.readline))
        launcher = psutil.Process(launcher_pid)
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    await wait_until(lambda: gone([launcher]))  # it exits once its server is gone
    handle = Handle.from_dict(data)
    status = await LocalExecutor().wait(handle)
    assert (status.reason, status.exit_code) == ("exited", 5)
    assert texts(spec.run_dir) == ["started", "done"]


async def test_the_launcher_is_restarted_after_it_dies(executor, make_spec):
    old = executor.launcher_pid
    os.kill(old, signal.SIGKILL)
    await wait_until(lambda: executor.launcher_pid is None)
    status = await run(executor, make_spec(["true"]))
    assert status.exit_code == 0 and executor.launcher_pid not in (None, old)


async def test_a_dead_supervisor_means_lost_and_stop_sweeps(executor, make_spec):
    spec = make_spec(["sleep", "1000"])
    handle = await executor.launch(spec)
    os.kill(handle.supervisor_pid, signal.SIGKILL)
    status = await executor.wait(handle)
    assert status.reason == "lost"
    assert psutil.pid_exists(handle.pid)  # orphaned, still running
    job = psutil.Process(handle.pid)
    await executor.stop(handle, 1.0)
    assert gone([job])


async def test_sweep_kills_marked_processes(make_spec):
    executor = LocalExecutor(cgroups="off")  # with cgroups, the sweep kills the cgroup instead
    spec = make_spec(["true"])
    proc = subprocess.Popen(["sleep", "1000"], env=spec.env, start_new_session=True)

    def carries_the_marker() -> bool:  # until it has exec'ed, it shows this process's env
        with contextlib.suppress(psutil.Error):
            return psutil.Process(proc.pid).environ().get("JOBYARD_JOB_MARKER") == spec.marker
        return False

    try:
        await wait_until(carries_the_marker)
        assert executor.sweep(spec.marker) == [proc.pid]
        assert gone([psutil.Process(proc.pid)])
        assert executor.sweep(spec.marker) == []
    finally:
        proc.kill()
        proc.wait()


async def test_many_concurrent_launches(executor, make_spec):
    statuses = await asyncio.gather(*(run(executor, make_spec(["true"])) for _ in range(50)))
    assert {(s.reason, s.exit_code) for s in statuses} == {("exited", 0)}
    launcher = psutil.Process(executor.launcher_pid)
    # Every supervisor reaped (no zombies); with cgroups one spare waits for the next launch.
    await wait_until(lambda: len(launcher.children()) == (executor.cgroups[0] is not None))


async def _throughput(jobs: int = 300, concurrency: int = 20) -> None:
    executor = LocalExecutor()
    await executor.start()
    env = {"PATH": os.environ["PATH"], "JOBYARD_JOB_MARKER": "bench"}
    limit = asyncio.Semaphore(concurrency)
    with tempfile.TemporaryDirectory() as tmp:

        def spec(i: int, argv: list[str]) -> LaunchSpec:
            return LaunchSpec("bench", i, argv, env, None, f"{tmp}/{i}", 1 << 20, 1.0, "bench")

        async def one(i: int) -> None:
            async with limit:
                await executor.wait(await executor.launch(spec(i, ["true"])))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(jobs)))
        elapsed = time.perf_counter() - started
        print(f"{jobs} jobs, concurrency {concurrency}: {jobs / elapsed:.0f} jobs/s")
        latencies = []
        for i in range(jobs, jobs + 50):  # launch called -> the job's first instruction
            launched_at = time.time()
            await executor.wait(await executor.launch(spec(i, ["date", "+%s.%N"])))
            latencies.append(float(texts(f"{tmp}/{i}")[0]) - launched_at)
        print(f"dispatch latency: median {statistics.median(latencies) * 1000:.1f} ms")
    await executor.close()


if __name__ == "__main__":
    asyncio.run(_throughput(*map(int, sys.argv[1:])))


# pause and resume ----------------------------------------------------------------------------
# Forks a short-lived child every few milliseconds (processes appear between two scans), and
# keeps a setsid'd grandchild printing: pause must catch all of them.
FORKER = r"""
import os, subprocess, sys, time
subprocess.Popen(["sh", "-c", "while :; do echo tick; sleep 0.01; done"], start_new_session=True)
while True:
    if os.fork() == 0:
        time.sleep(0.003); os._exit(0)
    time.sleep(0.002)
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0: break
        except ChildProcessError:
            break
"""


def live(pids: list[int]) -> list[int]:
    """The live ones (a zombie has ended: its parent, paused, cannot reap it)."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
    return found


async def test_pause_stops_every_process_of_a_forking_job_but_not_its_supervisor(
        executor, make_spec):
    spec = make_spec([sys.executable, "-c", FORKER])
    handle = await executor.launch(spec)
    await wait_until(lambda: len(texts(spec.run_dir)) >= 3)
    await executor.pause(handle)
    # On return, every process of the job is stopped: nothing forked between scans escaped.
    tree = [p.pid for p in psutil.Process(handle.supervisor_pid).children(recursive=True)]
    assert len(tree) >= 3 and all(is_paused(pid) for pid in live(tree))
    assert not is_paused(handle.supervisor_pid)
    await executor.pause(handle)  # idempotent
    lines = len(texts(spec.run_dir))
    await asyncio.sleep(0.3)  # a window in which the log must not grow
    assert len(texts(spec.run_dir)) == lines
    await executor.resume(handle)
    assert not any(is_paused(pid) for pid in live(tree))
    await wait_until(lambda: len(texts(spec.run_dir)) > lines)
    await executor.resume(handle)  # idempotent
    await executor.stop(handle, 5.0)
    status = await executor.wait(handle)
    assert status.reason == "stopped"


async def test_a_paused_job_stopped_then_resumed_sees_its_sigterm(executor, make_spec):
    spec = make_spec(sh("trap 'echo term; exit 0' TERM; while :; do sleep 0.01; done"),
                     grace=30.0)
    handle = await executor.launch(spec)
    # A sleep of the loop exists: the shell has set its trap (a SIGTERM before would kill it).
    await wait_until(lambda: len(psutil.Process(handle.supervisor_pid).children(recursive=True))
                     >= 2)
    await executor.pause(handle)
    await executor.stop(handle, 30.0)
    await executor.resume(handle)
    status = await executor.wait(handle)
    assert status.receipt is not None and status.receipt["sigterm_obeyed"] is True
    assert "term" in texts(spec.run_dir)


async def test_pause_and_resume_of_an_ended_attempt_do_nothing(executor, make_spec):
    spec = make_spec(["true"])
    handle = await executor.launch(spec)
    await executor.wait(handle)
    await executor.pause(handle)
    await executor.resume(handle)


async def test_pause_does_not_wait_on_a_job_caught_in_vfork(executor, make_spec):
    # subprocess uses vfork(): a child stopped before its exec holds its parent in "D".
    spec = make_spec([sys.executable, "-c",
                      "import subprocess\nwhile True: subprocess.run(['true'])"])
    handle = await executor.launch(spec)
    await wait_until(lambda: psutil.Process(handle.supervisor_pid).children(recursive=True))
    for _ in range(20):
        started = time.monotonic()
        await executor.pause(handle)
        assert time.monotonic() - started < 2.0
        await executor.resume(handle)
    await executor.stop(handle, 5.0)
    await executor.wait(handle)
