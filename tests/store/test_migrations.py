"""Migrations that move data: rows written by an older schema come out right after upgrade."""

import sqlalchemy as sa
from alembic import command

from jobyard.core.states import JobState
from jobyard.store import migrate
from jobyard.store.sql import SqlStore

# The jobs table as revision 0007 has it (its NOT NULL columns; extra was an untyped bag).
JOBS_0007 = sa.table(
    "jobs", *(sa.column(name, type_) for name, type_ in {
        "uid": sa.String(), "user_id": sa.Integer(), "org_id": sa.Integer(),
        "name": sa.String(), "command": sa.JSON(), "env": sa.JSON(), "gpus": sa.Integer(),
        "cpus": sa.Double(), "memory_mb": sa.Integer(), "priority": sa.Integer(),
        "retry": sa.JSON(), "tags": sa.JSON(), "state": sa.String(),
        "created_at": sa.Double(), "updated_at": sa.Double(), "attempt": sa.Integer(),
        "extra": sa.JSON()}.items()))


def to_revision(engines, revision: str, down: bool = False) -> None:
    with engines.write.begin() as conn:
        step = command.downgrade if down else command.upgrade
        step(migrate.alembic_config(conn), revision)


def insert_0007_job(engines, user: dict, uid: str, extra: dict) -> None:
    with engines.write.begin() as conn:
        conn.execute(sa.insert(JOBS_0007).values(
            uid=uid, user_id=user["id"], org_id=user["org_id"], name="j", command="true",
            env={}, gpus=0, cpus=1.0, memory_mb=0, priority=0, retry={}, tags=[],
            state="running", created_at=1.0, updated_at=1.0, attempt=1, extra=extra))


def extras(engines) -> dict[str, dict]:
    with engines.read.connect() as conn:
        return dict(conn.execute(sa.select(JOBS_0007.c.uid, JOBS_0007.c.extra)).all())


def test_0008_moves_the_typed_fields_out_of_extra(engines):
    to_revision(engines, "0007")
    store = SqlStore(engines)
    store.accounts.create_org("acme")
    user = store.accounts.create_user("ann", "acme")
    insert_0007_job(engines, user, "job_all", {
        "tensorpool": {"commands": ["python train.py"]}, "outputs": ["model.pth", "ckpt/"],
        "cluster": {"name": "big"}, "teardown_cluster": True, "timed_out": True,
        "stop_error": {"code": "BUDGET_EXCEEDED", "message": "over", "details": {}},
    })
    insert_0007_job(engines, user, "job_vendor", {"xplenty": {"package_id": 3,
                                                              "note": "the outputs are kept"}})
    insert_0007_job(engines, user, "job_plain", {})
    insert_0007_job(engines, user, "job_no_teardown", {"tensorpool": {"commands": []},
                                                       "teardown_cluster": False})

    migrate.upgrade(engines.write)

    moved = store.jobs.get_job("job_all")
    assert moved.state is JobState.RUNNING
    assert moved.dialect == {"tensorpool": {"commands": ["python train.py"]}}
    assert moved.output_patterns == ["model.pth", "ckpt/"] and moved.cluster_name == "big"
    assert moved.teardown_cluster is True and moved.timed_out is True
    assert moved.stop_error == {"code": "BUDGET_EXCEEDED", "message": "over", "details": {}}
    assert store.jobs.get_job(moved.id) == moved  # the hot read path agrees
    for uid, dialect in (("job_vendor", {"xplenty": {"package_id": 3,
                                                     "note": "the outputs are kept"}}),
                         ("job_plain", {}), ("job_no_teardown", {"tensorpool": {"commands": []}})):
        job = store.jobs.get_job(uid)
        assert job.dialect == dialect, uid
        assert (job.output_patterns, job.cluster_name, job.teardown_cluster, job.timed_out,
                job.stop_error) == ([], None, False, False, None), uid

    # And back: 0007 finds its bag as it left it (false flags are simply absent).
    to_revision(engines, "0007", down=True)
    decoded = extras(engines)
    assert decoded["job_all"] == {
        "tensorpool": {"commands": ["python train.py"]}, "outputs": ["model.pth", "ckpt/"],
        "cluster": {"name": "big"}, "teardown_cluster": True, "timed_out": True,
        "stop_error": {"code": "BUDGET_EXCEEDED", "message": "over", "details": {}},
    }
    assert decoded["job_plain"] == {} and decoded["job_no_teardown"] == {
        "tensorpool": {"commands": []}}
    migrate.upgrade(engines.write)
    assert store.jobs.get_job("job_all") == moved


def test_0009_adds_a_jobs_pause_record_with_no_pause_for_existing_rows(engines):
    to_revision(engines, "0008")
    store = SqlStore(engines)
    store.accounts.create_org("acme")
    user = store.accounts.create_user("ann", "acme")
    insert_0007_job(engines, user, "job_old", {})
    migrate.upgrade(engines.write)
    old = store.jobs.get_job("job_old")
    assert (old.paused_at, old.paused_s) == (None, 0.0)
    store.jobs.update_fields(old.id, {"paused_at": 12.5, "paused_s": 3.25})
    assert (store.jobs.get_job(old.id).paused_at, store.jobs.get_job(old.id).paused_s) == (
        12.5, 3.25)
    to_revision(engines, "0008", down=True)  # and back: the columns go, the row stays
    assert "job_old" in extras(engines)
    migrate.upgrade(engines.write)
    assert store.jobs.get_job("job_old").paused_s == 0.0
