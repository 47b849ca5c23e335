"""The attempt runner and its plug-in seam: the daemon in-process on the fake executor, with
hooks built by the factory the daemon is given (the way ``runtime.attempt_hooks`` is)."""

import asyncio
import time
from contextlib import asynccontextmanager

import sqlalchemy as sa

from jobyard import ids
from jobyard.config import Config
from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.ports import NewJob
from jobyard.core.states import JobState
from jobyard.daemon.daemon import Daemon
from jobyard.daemon.hooks import AttemptHook, Stopper
from jobyard.daemon.inventory import Allocator, Inventory
from jobyard.events.notify import Notifier
from jobyard.executors.fake import FakeExecutor
from jobyard.testing import async_wait_until


class Recorder(AttemptHook):
    """Records what the runner tells it; stops the jobs named ``stop-me`` through its Stopper."""

    def __init__(self, stopper: Stopper) -> None:
        self.stopper = stopper
        self.ending_calls: list[tuple[int, bool]] = []  # (attempt, final)

    async def started(self, job, handle) -> None:
        if job.name == "stop-me":
            assert await self.stopper.stop_with_error(job.id, {
                "code": "TOO_LOUD", "message": "a plug-in stopped it", "details": {}})

    async def ending(self, job, status, final):
        self.ending_calls.append((job.attempt, final))
        return {"recorded": True}


@asynccontextmanager
async def running_daemon(store, tmp_path, executor=None):
    """A daemon on ``store`` until the block ends; yields (daemon, executor, hooks)."""
    executor = executor or FakeExecutor()
    notifier = Notifier()
    notifier.bind(asyncio.get_running_loop())
    made: list[Recorder] = []

    def build(stopper: Stopper) -> list[AttemptHook]:
        made.append(Recorder(stopper))
        return made

    config = Config(data_dir=tmp_path, tick_interval_s=0.05, kill_grace_s=1,
                    reconcile_interval_s=0.1)
    daemon = Daemon(config, store, executor, Allocator(Inventory([], 4.0, 0, "none")), notifier,
                    hooks=build)
    task = asyncio.create_task(daemon.run())
    try:
        yield daemon, executor, made
    finally:
        await daemon.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def submit(store, name="j", retry=RetryPolicy(), **fields) -> Job:
    org = store.accounts.list_orgs()
    if not org:
        store.accounts.create_org("o")
        store.accounts.create_user("u", "o")
    user = store.accounts.find_user("u")
    job = Job(id=0, uid=ids.job_uid(), user_id=user["id"], org_id=user["org_id"], name=name,
              command="true", env={}, workdir=None, instance_type=None, priority=0,
              retry=retry, tags=[], created_at=time.time(),
              **{"time_limit_s": None, "state": JobState.QUEUED, "resources": Resources(),
                 **fields})
    return store.jobs.create_job(NewJob(job))[0]


def ended(store, job_id):
    return async_wait_until(lambda: (j := store.jobs.get_job(job_id)).is_terminal and j)


async def test_hooks_are_told_whether_the_job_ends_with_the_attempt(store, tmp_path):
    async with running_daemon(store, tmp_path) as (_, fake, [hook]):
        job = submit(store, retry=RetryPolicy(max_retries=1, backoff_s=0.0, on=("error",)))
        await async_wait_until(lambda: fake.running)
        fake.finish(job.uid, exit_code=3)  # retried
        await async_wait_until(lambda: store.jobs.get_job(job.id).attempt == 2 and fake.running)
        fake.finish(job.uid, exit_code=3)  # the last attempt
        done = await ended(store, job.id)
    assert done.state is JobState.ERROR and done.telemetry["recorded"] is True
    assert hook.ending_calls == [(1, False), (2, True)]


async def test_a_plugin_stops_an_attempt_through_its_stopper(store, tmp_path):
    async with running_daemon(store, tmp_path) as (daemon, fake, [hook]):
        job = submit(store, name="stop-me", retry=RetryPolicy(max_retries=2, on=("failed",)))
        done = await ended(store, job.id)
        assert not await daemon.runner.stop_with_error(job.id, {})  # not running any more
    assert done.state is JobState.FAILED and done.error["code"] == "TOO_LOUD"
    assert done.message == "a plug-in stopped it" and done.attempt == 1  # no retry
    assert len(fake.stopped) == 1 and hook.ending_calls == [(1, True)]


async def test_a_time_out_recorded_before_a_restart_is_carried_out_after_it(store, tmp_path):
    fake = FakeExecutor()
    async with running_daemon(store, tmp_path, fake):
        job = submit(store, time_limit_s=3600.0)
        await async_wait_until(lambda: store.jobs.get_job(job.id).state is JobState.RUNNING)
    # The server went down just after its timer fired: the job's processes outlived it.
    store.jobs.update_fields(job.id, {"timed_out": True})
    async with running_daemon(store, tmp_path, fake):
        done = await ended(store, job.id)
    assert done.state is JobState.TIMEOUT and len(fake.stopped) == 1
    assert done.error["code"] == "TIMEOUT"


async def test_the_attempt_after_a_time_out_is_not_taken_for_timed_out(store, tmp_path):
    fake = FakeExecutor()
    async with running_daemon(store, tmp_path, fake):
        job = submit(store, retry=RetryPolicy(max_retries=1, backoff_s=0.0, on=("timeout",)),
                     time_limit_s=0.2)
        retried = await async_wait_until(
            lambda: (j := store.jobs.get_job(job.id)).attempt == 2 and j.runtime and j)
        assert not retried.timed_out  # the first attempt's time-out stays with it
    async with running_daemon(store, tmp_path, fake):  # a restart adopts the second attempt
        await async_wait_until(lambda: len(fake.running) == 1)
        fake.finish(job.uid, exit_code=0)
        done = await ended(store, job.id)
    assert done.state is JobState.COMPLETED and len(fake.stopped) == 1  # the first only


class FailingEnds:
    """The store, except that writing a terminal state fails ``failures`` times (as a full
    disk, a database failover or a lock timeout would)."""

    def __init__(self, store, failures: int):
        self._store = store
        self.failures = failures
        self.jobs = self

    def apply(self, transitions):
        if self.failures and any(t.to.is_terminal for t in transitions):
            self.failures -= 1
            raise sa.exc.OperationalError("UPDATE jobs ...", {},
                                          OSError(28, "database or disk is full"))
        return self._store.jobs.apply(transitions)

    def __getattr__(self, name):  # everything else: the store's own (its jobs' too)
        found = getattr(self._store, name, None)
        return found if found is not None else getattr(self._store.jobs, name)


async def test_an_attempts_end_is_written_until_it_commits_its_resources_held_meanwhile(
        store, tmp_path):
    failing = FailingEnds(store, failures=3)
    async with running_daemon(failing, tmp_path) as (daemon, fake, _):
        job = submit(store, resources=Resources(cpus=2.0))
        await async_wait_until(lambda: fake.running)
        fake.finish(job.uid, exit_code=0)
        await async_wait_until(lambda: failing.failures < 3)
        # Its end is not recorded yet: still running, and its CPUs are not given to others.
        assert store.jobs.get_job(job.id).state is JobState.RUNNING
        assert daemon.allocator.free().cpus == 2.0
        done = await ended(store, job.id)
        await async_wait_until(lambda: daemon.allocator.free().cpus == 4.0)
    assert done.state is JobState.COMPLETED and failing.failures == 0


async def test_an_active_job_no_attempt_watches_is_recovered_while_the_daemon_runs(
        store, tmp_path):
    async with running_daemon(store, tmp_path) as (daemon, _, _):
        await async_wait_until(lambda: daemon.reconciled.is_set())
        # Left running by something that is gone (its supervisor too): no attempt watches it.
        job = submit(store, state=JobState.RUNNING, started_at=time.time())
        store.jobs.update_fields(job.id, {"runtime": {"pid": 99999999, "pid_ctime": 1.0,
                                                      "run_dir": "gone"}})
        done = await ended(store, job.id)
    assert done.state is JobState.FAILED and "disappeared" in done.message


# pause and resume ---------------------------------------------------------------------------
async def _paused_once_running(daemon, store, fake, job_id) -> None:
    """Wait for the job to run, pause it, and wait until the executor has paused it."""
    await async_wait_until(lambda: store.jobs.get_job(job_id).state is JobState.RUNNING)
    _pause(daemon, store, job_id)
    await async_wait_until(lambda: fake.paused)


def _pause(daemon, store, job_id):
    from jobyard.core.jobs import pause_transition
    [job] = store.jobs.apply([pause_transition(store.jobs.get_job(job_id), time.time(), "u")])
    daemon.notifier.wake_daemon("pause")
    return job


def _resume(daemon, store, job_id):
    from jobyard.core.jobs import resume_transition
    [job] = store.jobs.apply([resume_transition(store.jobs.get_job(job_id), time.time(), "u")])
    daemon.notifier.wake_daemon("resume")
    return job


async def test_the_time_limit_stops_while_paused_and_resumes_with_what_was_left(
        store, tmp_path):
    async with running_daemon(store, tmp_path) as (daemon, fake, _):
        job = submit(store, time_limit_s=0.5)
        running = await async_wait_until(
            lambda: (j := store.jobs.get_job(job.id)).state is JobState.RUNNING and j)
        _pause(daemon, store, job.id)
        handle = fake.latest(job.uid).handle
        await async_wait_until(lambda: fake.is_paused(handle))
        await asyncio.sleep(1.0)  # twice the limit, paused: a window for a wrong time-out
        assert store.jobs.get_job(job.id).state is JobState.PAUSED and not fake.stopped
        resumed = _resume(daemon, store, job.id)
        assert resumed.paused_at is None and resumed.paused_s >= 1.0
        await async_wait_until(lambda: not fake.is_paused(handle))
        done = await ended(store, job.id)
    assert done.state is JobState.TIMEOUT and [c for c, _ in fake.pauses] == ["pause", "resume"]
    ran = done.finished_at - running.started_at
    assert 0.5 + resumed.paused_s - 0.05 <= ran < 0.5 + resumed.paused_s + 2


async def test_a_paused_job_is_adopted_paused_and_resumes_after_the_restart(store, tmp_path):
    fake = FakeExecutor()
    async with running_daemon(store, tmp_path, fake) as (daemon, _, _):
        job = submit(store, time_limit_s=0.3)
        await _paused_once_running(daemon, store, fake, job.id)
    async with running_daemon(store, tmp_path, fake) as (daemon, _, _):
        await async_wait_until(lambda: len(fake.pauses) == 2)  # paused again on adoption
        await asyncio.sleep(0.6)  # past its time limit: a window for a wrong time-out
        assert store.jobs.get_job(job.id).state is JobState.PAUSED and not fake.stopped
        _resume(daemon, store, job.id)
        await async_wait_until(lambda: not fake.paused)
        done = await ended(store, job.id)
    assert done.state is JobState.TIMEOUT and len(fake.stopped) == 1
    assert [c for c, _ in fake.pauses] == ["pause", "pause", "resume"]


async def test_a_paused_job_canceled_is_continued_after_the_stop(store, tmp_path):
    from jobyard.core.jobs import cancel_transition
    async with running_daemon(store, tmp_path) as (daemon, fake, _):
        job = submit(store)
        await _paused_once_running(daemon, store, fake, job.id)
        store.jobs.apply([cancel_transition(store.jobs.get_job(job.id), time.time(), "u")])
        daemon.notifier.wake_daemon("cancel")
        done = await ended(store, job.id)
    assert done.state is JobState.CANCELED and len(fake.stopped) == 1
    assert [c for c, _ in fake.pauses] == ["pause", "resume"]  # the resume came after the stop


async def test_a_paused_job_whose_process_ends_keeps_its_outcome(store, tmp_path):
    async with running_daemon(store, tmp_path) as (daemon, fake, _):
        job = submit(store)
        await _paused_once_running(daemon, store, fake, job.id)
        fake.finish(job.uid, signal=9)  # e.g. killed by the OOM killer while stopped
        done = await ended(store, job.id)
    assert done.state is JobState.ERROR and done.error["code"] == "KILLED_BY_SIGNAL"


async def test_a_pause_and_resume_the_daemon_did_not_see_still_move_the_time_limit(
        store, tmp_path):
    from jobyard.core.jobs import pause_transition, resume_transition
    async with running_daemon(store, tmp_path) as _:
        job = submit(store, time_limit_s=0.5)
        running = await async_wait_until(
            lambda: (j := store.jobs.get_job(job.id)).state is JobState.RUNNING and j)
        # Recorded without waking the daemon (as another replica's API would), paused 1 s.
        store.jobs.apply([pause_transition(running, running.started_at, "u")])
        paused = store.jobs.get_job(job.id)
        store.jobs.apply([resume_transition(paused, paused.paused_at + 1.0, "u")])
        done = await ended(store, job.id)
    assert done.state is JobState.TIMEOUT
    assert done.finished_at - running.started_at >= 1.5 - 0.05
