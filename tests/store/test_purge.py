from jobyard.core.models import Job
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from jobyard.store.files import remove_job_files
from tests.store.test_sql import new_job, owner


def test_only_terminal_jobs_are_deleted_with_all_their_rows(store):
    user = owner(store)
    done, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_done", tags=["t"]),
                                      ("idem-1", "fp")))
    live, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_live")))
    for state in (JobState.LAUNCHING, JobState.RUNNING, JobState.COMPLETED):
        store.jobs.apply([Transition(done.id, state, {})])
    store.telemetry.record_outputs(done.id, 1, [{"name": "a.txt", "size": 1, "records": 1,
                                       "partial": False}])
    assert store.jobs.events(done.id)

    assert store.jobs.delete_jobs([done.id, live.id]) == [done.id]
    assert store.jobs.get_job("job_done") is None and store.jobs.get_job("job_live") is not None
    assert store.jobs.events(done.id) == [] and store.telemetry.list_outputs(done.id) == []
    # The idempotency key went with it: the same key makes a new job.
    again, created = store.jobs.create_job(NewJob(new_job(user, uid="job_new"), ("idem-1", "fp")))
    assert created and again.uid == "job_new"
    assert store.jobs.delete_jobs([]) == []


def test_files_of_every_attempt_and_the_workspace_go(tmp_path):
    data = tmp_path / "data"
    spaces = data / "workspaces"
    (spaces / "ws1" / "project").mkdir(parents=True)
    (spaces / "ws1" / "venv").mkdir()
    for attempt in (1, 2):
        (data / "runs" / f"job_a.{attempt}").mkdir(parents=True)
    keep = data / "runs" / "job_b.1"
    keep.mkdir()
    outside = tmp_path / "mine"
    outside.mkdir()
    job = Job(id=1, uid="job_a", user_id=1, org_id=1, name="a", command="true", env={},
              workdir=str(spaces / "ws1" / "project"), resources=None, instance_type=None,
              priority=0, time_limit_s=None, retry=None, tags=[], state=JobState.COMPLETED,
              created_at=0, attempt=2)
    remove_job_files(data, job)
    assert not (data / "runs" / "job_a.1").exists() and not (data / "runs" / "job_a.2").exists()
    assert not (spaces / "ws1").exists() and keep.exists()
    job.workdir = str(outside)  # a directory the user chose is never removed
    remove_job_files(data, job)
    assert outside.exists()
