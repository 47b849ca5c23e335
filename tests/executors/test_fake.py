"""FakeExecutor: the double the daemon's tests run against."""

from __future__ import annotations

import asyncio

import pytest

from jobyard.errors import LaunchError
from jobyard.executors.base import LaunchSpec
from jobyard.executors.fake import FakeExecutor


def spec(job_uid: str = "job1", attempt: int = 1) -> LaunchSpec:
    marker = f"{job_uid}.{attempt}"
    return LaunchSpec(
        job_uid,
        attempt,
        ["true"],
        {"JOBYARD_JOB_MARKER": marker},
        None,
        f"/runs/{job_uid}/{attempt}",
        1000,
        5.0,
        marker,
    )


async def test_finish_ends_the_latest_attempt():
    fake = FakeExecutor()
    first = await fake.launch(spec(attempt=1))
    second = await fake.launch(spec(attempt=2))
    assert [s.attempt for s in fake.launched] == [1, 2] and first.pid != second.pid
    waiter = asyncio.create_task(fake.wait(second))
    await asyncio.sleep(0)
    assert not waiter.done() and fake.adopt(second)
    fake.finish("job1", exit_code=3)
    status = await waiter
    assert (status.reason, status.exit_code) == ("exited", 3)
    assert fake.recover(second.run_dir) == (second, status) and not fake.adopt(second)
    assert fake.running == [first]


async def test_finish_with_a_signal():
    fake = FakeExecutor()
    handle = await fake.launch(spec())
    fake.finish("job1", signal=9)
    status = await fake.wait(handle)
    assert (status.exit_code, status.signal) == (None, 9)


async def test_fail_next_launch():
    fake = FakeExecutor()
    fake.fail_next_launch("no such command")
    with pytest.raises(LaunchError, match="no such command"):
        await fake.launch(spec())
    assert len(fake.launched) == 1 and fake.running == []
    await fake.launch(spec(attempt=2))  # only the next one fails
    assert len(fake.running) == 1


@pytest.mark.parametrize("obeyed", [True, False])
async def test_stop_records_and_reports_a_receipt(obeyed):
    fake = FakeExecutor(sigterm_obeyed=obeyed)
    handle = await fake.launch(spec())
    await fake.stop(handle, 2.5)
    status = await fake.wait(handle)
    assert fake.stopped == [(handle, 2.5)]
    assert status.reason == "stopped" and status.receipt["sigterm_obeyed"] is obeyed
    assert ("SIGKILL" in status.receipt["signals"]) is not obeyed


async def test_stop_after_finish_keeps_the_exit():
    fake = FakeExecutor(auto_exit_code=0)
    handle = await fake.launch(spec())
    await fake.stop(handle, 1.0)
    assert (await fake.wait(handle)).reason == "exited"


async def test_lose_and_sweep():
    fake = FakeExecutor()
    lost = await fake.launch(spec("a"))
    swept = await fake.launch(spec("b"))
    fake.lose("a")
    assert (await fake.wait(lost)).reason == "lost"
    assert fake.sweep(swept.marker) == [swept.pid] and fake.swept == [swept.marker]
    assert (await fake.wait(swept)).signal == 9
    assert fake.recover("/elsewhere") == (None, None)


async def test_pause_and_resume_are_recorded_and_an_ended_run_is_never_paused():
    fake = FakeExecutor()
    handle = await fake.launch(spec())
    await fake.pause(handle)
    assert fake.is_paused(handle) and fake.paused == {handle.run_dir}
    await fake.resume(handle)
    assert not fake.is_paused(handle)
    fake.finish("job1")
    await fake.pause(handle)
    assert not fake.is_paused(handle)
    assert [call for call, _ in fake.pauses] == ["pause", "resume", "pause"]
