import asyncio

import pytest

from jobyard.config import Config
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from jobyard.daemon.retention import Retention
from jobyard.store import migrate
from jobyard.store.files import run_dir
from jobyard.store.sql import SqlStore
from tests.daemon.test_schedules import Clock
from tests.store.test_sql import new_job, owner

DAY = 86400.0


@pytest.fixture
def clock() -> Clock:
    return Clock(0.0)


@pytest.fixture
def store(engines, clock) -> SqlStore:
    migrate.upgrade(engines.write)
    return SqlStore(engines, clock=clock)


def finish(store, job, at):
    store.clock.now = at
    for state in (JobState.LAUNCHING, JobState.RUNNING, JobState.COMPLETED):
        store.jobs.apply([Transition(job.id, state, {})])


def test_jobs_past_retention_go_in_bounded_batches_with_their_files(store, tmp_path):
    user = owner(store)
    now = 100 * DAY
    old = []
    for n in range(5):
        job, _ = store.jobs.create_job(NewJob(new_job(user, uid=f"job_old{n}")))
        finish(store, job, now - 31 * DAY)
        run_dir(tmp_path, job.uid, 1).mkdir(parents=True)
        old.append(job)
    recent, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_recent")))
    finish(store, recent, now - 29 * DAY)
    store.jobs.create_job(NewJob(new_job(user, uid="job_live")))  # never ended
    store.clock.now = now

    config = Config(data_dir=tmp_path, retention_days=30, retention_batch=2)
    assert asyncio.run(Retention(config, store).sweep()) == 5
    assert all(store.jobs.get_job(j.uid) is None for j in old)
    assert not any(run_dir(tmp_path, j.uid, 1).exists() for j in old)
    assert store.jobs.get_job("job_recent") is not None
    assert store.jobs.get_job("job_live") is not None
    assert asyncio.run(Retention(config, store).sweep()) == 0


def test_no_retention_keeps_everything(store, tmp_path):
    user = owner(store)
    job, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_a")))
    finish(store, job, 0.0)
    store.clock.now = 1000 * DAY
    config = Config(data_dir=tmp_path, retention_days=None)
    assert asyncio.run(Retention(config, store).sweep()) == 0
    assert store.jobs.get_job("job_a") is not None


def test_workspaces_no_job_owns_go_after_an_hour(store, tmp_path):
    import os

    from jobyard.store.files import new_workspace

    user = owner(store)
    owned, orphan, fresh = (new_workspace(tmp_path) for _ in range(3))
    store.jobs.create_job(NewJob(new_job(user, uid="job_ws", workdir=str(owned / "project"))))
    for home in (owned, orphan):
        os.utime(home, (0, 0))  # old
    asyncio.run(Retention(Config(data_dir=tmp_path), store).sweep())
    assert owned.exists() and fresh.exists() and not orphan.exists()
