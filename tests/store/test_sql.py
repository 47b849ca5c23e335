import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jobyard.core.inputs import ListJobs
from jobyard.core.models import Resources
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from jobyard.errors import Conflict, IllegalTransition
from jobyard.store import migrate
from jobyard.store.tables import metadata
from tests.daemon.test_outcome import make_job


def owner(store):
    store.accounts.create_org("acme")
    return store.accounts.create_user("ann", "acme")


def new_job(user, **kw):
    job = make_job(state=JobState.QUEUED)
    job.user_id, job.org_id = user["id"], user["org_id"]
    for k, v in kw.items():
        setattr(job, k, v)
    return job


def test_migrations_produce_exactly_the_model(engines):
    migrate.upgrade(engines.write)
    migrate.upgrade(engines.write)  # idempotent
    with engines.write.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_create_writes_the_job_and_its_first_event_together(store):
    user = owner(store)
    job, created = store.jobs.create_job(NewJob(new_job(user, uid="job_a", tags=["x", "y"])))
    assert created and job.id > 0
    assert store.jobs.get_job("job_a").id == job.id == store.jobs.get_job(job.id).id
    [event] = store.jobs.events(job.id)
    assert event.kind == "state" and event.state == "queued"
    assert job.id in store.changed


def test_idempotency_key_replays_and_refuses_a_different_body(store):
    user = owner(store)
    _, created = store.jobs.create_job(NewJob(new_job(user, uid="job_1"), ("k1", "fp")))
    again, created_again = store.jobs.create_job(NewJob(new_job(user, uid="job_2"), ("k1", "fp")))
    assert created and not created_again and again.uid == "job_1"
    assert store.jobs.get_job("job_2") is None
    with pytest.raises(Conflict):
        store.jobs.create_job(NewJob(new_job(user, uid="job_3"), ("k1", "other")))


def test_apply_checks_the_table_and_logs_every_change(store):
    user = owner(store)
    job, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_t")))
    ok, bad = store.jobs.apply([
        Transition(job.id, JobState.LAUNCHING, {"assigned": {"gpus": [1]}}),
        Transition(job.id, JobState.COMPLETED, {}),  # launching -> completed is not allowed
    ])
    assert ok.state is JobState.LAUNCHING and ok.assigned == {"gpus": [1]}
    assert isinstance(bad, IllegalTransition)
    [running] = store.jobs.apply([Transition(job.id, JobState.RUNNING, {})])
    assert running.started_at is not None
    [done] = store.jobs.apply([Transition(job.id, JobState.COMPLETED, {"exit_code": 0})])
    fresh = store.jobs.get_job(job.id)
    assert fresh.state is JobState.COMPLETED and fresh.exit_code == 0 and fresh.finished_at
    assert [e.state for e in store.jobs.events(job.id)] == ["queued", "launching", "running",
                                                        "completed"]
    assert store.jobs.events(job.id)[-1].data["exit_code"] == 0
    assert isinstance(done, type(fresh))


def test_queue_order_position_and_filters(store):
    user = owner(store)
    low, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_low", priority=0, created_at=1.0)))
    high, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_high", priority=5, created_at=2.0,
                                              tags=["exp"])))
    old, _ = store.jobs.create_job(NewJob(new_job(user, uid="job_old", priority=0, created_at=0.5,
                                             name="old")))
    queued = store.jobs.jobs_in_states([JobState.QUEUED])
    assert [j.uid for j in queued] == ["job_high", "job_old", "job_low"]
    assert store.jobs.queue_position(low) == 3 and store.jobs.queue_position(high) == 1
    assert [j.uid for j in store.jobs.list_jobs(user["org_id"],
                                                ListJobs(tag="exp"))] == ["job_high"]
    assert [j.uid for j in store.jobs.list_jobs(user["org_id"],
                                                ListJobs(name="old"))] == ["job_old"]
    assert store.jobs.list_jobs(user["org_id"] + 1, ListJobs()) == []
    page = store.jobs.list_jobs(None, ListJobs(limit=2))
    rest = store.jobs.list_jobs(None, ListJobs(before_id=page[-1].id))
    assert [j.uid for j in page + rest] == ["job_old", "job_high", "job_low"]
    assert old.id > high.id
    store.jobs.create_job(NewJob(new_job(user, uid="job_gpu", created_at=3.0,
                                         resources=Resources(gpus=2))))

    def listed(**query) -> list[str]:
        return [j.uid for j in store.jobs.list_jobs(user["org_id"], ListJobs(**query))]
    assert listed(gpus=2) == ["job_gpu"] and listed(gpus=1) == []
    assert listed(created_after=1.0) == ["job_gpu", "job_high", "job_low"]
    assert listed(created_after=1.0, created_before=2.0) == ["job_low"]


def test_keys_resolve_to_principals_until_revoked(store):
    user = owner(store)
    key = store.accounts.create_key(user["id"], "h" * 64, "jy_abc", "laptop")
    who = store.accounts.principal_for_key("h" * 64)
    assert who.username == "ann" and who.org_id == user["org_id"] and not who.is_admin
    store.accounts.revoke_key(key["id"])
    assert store.accounts.principal_for_key("h" * 64) is None
    with pytest.raises(Conflict):
        store.accounts.create_user("ann", "acme")


def test_sqlite_runs_in_wal_mode(engines):
    if not engines.is_sqlite:
        pytest.skip("SQLite only")
    with engines.read.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_hot_reads_return_json_columns_as_stored(store):
    """The fast read path must decode JSON exactly once on every database."""
    user = owner(store)
    job = new_job(user, uid="job_json", command="true", env={"A": "1"}, tags=["null"],
                  dialect={"x": {"y": [1]}}, output_patterns=["a/*.pt"], teardown_cluster=True)
    store.jobs.create_job(NewJob(job))
    for ref in ("job_json", store.jobs.get_job("job_json").id):
        got = store.jobs.get_job(ref)
        assert got.command == "true" and got.env == {"A": "1"} and got.tags == ["null"]
        assert got.error is None and got.dialect == {"x": {"y": [1]}}
        assert got.output_patterns == ["a/*.pt"] and got.stop_error is None
        assert got.teardown_cluster is True and got.timed_out is False
    argv = new_job(user, uid="job_argv", command=["echo", "1"])
    store.jobs.create_job(NewJob(argv))
    assert store.jobs.get_job("job_argv").command == ["echo", "1"]


def test_an_org_ref_of_non_ascii_digits_names_no_org(store):
    org = store.accounts.create_org("acme")
    assert store.accounts.org_by_ref(str(org["id"])) == (org["id"], "acme")
    # Digits to str.isdigit, not to the database; int("\u0661") (ARABIC-INDIC ONE) is 1.
    for ref in ("²", "\u0661", "9" * 30):
        assert store.accounts.org_by_ref(ref) is None
