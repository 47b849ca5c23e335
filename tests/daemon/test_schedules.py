"""The schedule runner against a real store (SQLite and PostgreSQL), on a fake clock: due
runs become jobs exactly once, overlaps are skipped, missed runs are not made up, and idle
Integrate.io clusters are terminated."""

from __future__ import annotations

import asyncio

from jobyard.core.clusters import ClusterService, ClusterState, build_catalog
from jobyard.core.inputs import (
    ClaimCluster,
    CreatePackage,
    CreateSchedule,
    RunPackage,
    SubmitJob,
)
from jobyard.core.jobs import JobService
from jobyard.core.models import Principal, Resources
from jobyard.core.operations import OperationStatus
from jobyard.core.packages import CLUSTER_META, DIALECT_KEY, PackageService
from jobyard.core.ports import Transition
from jobyard.core.states import JobState
from jobyard.core.volumes import VolumeService
from jobyard.daemon.schedules import ScheduleRunner
from tests.store.test_sql import owner

HOUR = 3600.0
T0 = 2_000_000_000.0  # start of the schedules below


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def setup(store, start: float = T0, **schedule):
    user = owner(store)
    who = Principal(user["id"], user["org_id"], user["username"])
    clock = Clock(start - 10)
    jobs = JobService(store.jobs, store.kv, Resources(4, 8.0, 0), clock=clock)
    packages = PackageService(store.packages, jobs, clock)
    package = packages.create_package(who, CreatePackage(
        "etl", 'echo "$DAY"', variables={"DAY": "'mon'", "KEEP": "k"}))
    s = packages.create_schedule(who, CreateSchedule("hourly", package.id, 1, "hours", start,
                                                     variables={"DAY": "'tue'"}, **schedule))
    return who, clock, packages, ScheduleRunner(store, jobs, clock=clock), s


def all_jobs(store, who: Principal):
    return store.jobs.job_page(who.org_id, 0, 100)[0]


def finish(store, job_id: int, state=JobState.COMPLETED):
    for step in (JobState.LAUNCHING, JobState.RUNNING, state):
        store.jobs.apply([Transition(job_id, step, {})])


def test_a_due_schedule_submits_its_package_once(store):
    who, clock, packages, runner, s = setup(store)
    assert s.next_run_at == T0 and runner.run_due() == 0  # not due yet

    clock.now = T0 + 5
    assert runner.run_due() == 1
    [job] = all_jobs(store, who)
    assert job.name == "etl" and job.command == 'echo "$DAY"' and job.cluster_id is None
    assert job.env == {"DAY": "tue", "KEEP": "k"}
    assert job.dialect[DIALECT_KEY] == {
        "package_id": s.package_id, "package_name": "etl", "variables": {"DAY": "'tue'"},
        "dynamic_variables": {}, "cluster_id": None, "schedule_id": s.id}
    after = packages.get_schedule(who, s.id)
    assert (after.next_run_at, after.last_run_at, after.execution_count) == (
        T0 + HOUR, T0 + 5, 1)
    assert (after.last_job_id, after.last_run_status) == (job.id, "queued")
    assert runner.run_due() == 0 and len(all_jobs(store, who)) == 1

    finish(store, job.id)
    assert store.packages.refresh_schedule_runs() == 1
    assert store.packages.refresh_schedule_runs() == 0
    assert packages.get_schedule(who, s.id).last_run_status == "completed"


def test_missed_runs_are_not_made_up_and_overlaps_are_skipped(store):
    who, clock, packages, runner, s = setup(store)
    clock.now = T0 + 5.5 * HOUR  # the server was away for five runs
    assert runner.run_due() == 1
    first = packages.get_schedule(who, s.id)
    assert first.next_run_at == T0 + 6 * HOUR and first.execution_count == 1

    clock.now = T0 + 6 * HOUR  # the first run is still queued: this one is skipped
    assert runner.run_due() == 0
    skipped = packages.get_schedule(who, s.id)
    assert skipped.next_run_at == T0 + 7 * HOUR and skipped.execution_count == 1

    finish(store, first.last_job_id, JobState.ERROR)
    clock.now = T0 + 7 * HOUR
    assert runner.run_due() == 1 and len(all_jobs(store, who)) == 2
    assert packages.get_schedule(who, s.id).execution_count == 2


def test_a_run_submitted_before_a_crash_is_not_submitted_again(store):
    who, clock, packages, runner, s = setup(store)
    clock.now = T0
    # The leader submitted the run, then died before moving the schedule on.
    package = packages.get_package(who, s.package_id)
    job, created = packages.run(who, package, RunPackage(
        s.variables, schedule_id=s.id, idempotency=(f"schedule-{s.id}-{T0!r}", f"schedule:{s.id}")))
    assert created
    assert runner.run_due() == 1  # the next leader replays it
    assert [j.id for j in all_jobs(store, who)] == [job.id]
    after = packages.get_schedule(who, s.id)
    assert (after.last_job_id, after.execution_count, after.next_run_at) == (
        job.id, 1, T0 + HOUR)


def test_disabled_schedules_do_not_run_and_enabling_plans_from_now(store):
    who, clock, packages, runner, s = setup(store, enabled=False)
    clock.now = T0 + 3.5 * HOUR
    assert runner.run_due() == 0 and all_jobs(store, who) == []
    enabled = packages.set_enabled(who, s.id, True)
    assert enabled.status == "enabled" and enabled.next_run_at == T0 + 4 * HOUR
    clock.now = T0 + 4 * HOUR
    assert asyncio.run(runner.tick()) == 1


def test_idle_clusters_with_terminate_on_idle_are_terminated(store):
    user = owner(store)
    who = Principal(user["id"], user["org_id"], user["username"])
    clusters = ClusterService(store.clusters, store.volumes, store.kv,
                              build_catalog({}, Resources(0, 8.0, 8192)),
                              VolumeService(store.volumes))
    jobs = JobService(store.jobs, store.kv, Resources(0, 8.0, 8192),
                      check_cluster=clusters.check_job)

    def ready(name: str, meta: dict | None) -> str:
        req, cluster = clusters.claim(who, ClaimCluster("cpu-1", 1, name))
        req = store.operations.move_operation(req, OperationStatus.PROCESSING)
        store.clusters.update_cluster(cluster.uid, state="ready")
        store.operations.move_operation(req, OperationStatus.COMPLETED)
        if meta is not None:
            store.kv.put_kv(f"{CLUSTER_META}{cluster.id}", meta)
        return cluster.uid

    idle = ready("idle", {"terminate_on_idle": True, "time_to_idle": 60})
    kept = ready("kept", {"terminate_on_idle": False, "time_to_idle": 60})
    plain = ready("plain", None)
    busy = ready("busy", {"terminate_on_idle": True, "time_to_idle": 60})
    jobs.submit(who, SubmitJob(command="sleep 1", cluster_id=busy))
    clock = Clock(store.clock() + 30)
    runner = ScheduleRunner(store, jobs, clusters, clock)
    assert runner.terminate_idle() == 0
    clock.now += 60
    assert runner.terminate_idle() == 1
    states = {uid: store.clusters.get_cluster(uid).state for uid in (idle, kept, plain, busy)}
    assert states == {idle: ClusterState.RELEASING, kept: ClusterState.READY,
                      plain: ClusterState.READY, busy: ClusterState.READY}

    store.clusters.end_cluster(idle, ClusterState.RELEASED, "released")  # its release completed
    assert runner.terminate_idle() == 0
    idle_number = store.clusters.get_cluster(idle).id
    assert store.kv.get_kv(f"{CLUSTER_META}{idle_number}")["gone"] is True  # not looked at again
