"""JobService's rules (core/jobs.py): submit checks, who sees a job, cancel and delete."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.core.inputs import ListJobs, SubmitJob
from jobyard.core.jobs import SCHEDULER_SNAPSHOT, JobService, Limits
from jobyard.core.models import Resources, RetryPolicy
from jobyard.core.ports import Transition
from jobyard.core.states import JobState
from jobyard.errors import (
    Conflict,
    Forbidden,
    JobNotFound,
    Unschedulable,
    ValidationFailed,
)
from tests.core.conftest import Clock, RemovedFiles

CAPACITY = Resources(gpus=2, cpus=8, memory_mb=8192)


@pytest.fixture
def files() -> RemovedFiles:
    return RemovedFiles()


@pytest.fixture
def intents() -> list[str]:
    return []


@pytest.fixture
def jobs(any_store: Any, clock: Clock, files: RemovedFiles, intents: list[str]) -> JobService:
    return JobService(any_store.jobs, any_store.kv, CAPACITY, Limits(100, 3, 200), clock,
                      on_intent=intents.append, files=files)  # type: ignore[arg-type]





def move(any_store: Any, job_id: int, *states: JobState) -> None:
    for state in states:
        [result] = any_store.jobs.apply([Transition(job_id, state, {})])
        assert not isinstance(result, Exception), result


@pytest.mark.parametrize("cmd, where", [
    (SubmitJob(command=""), ["body", "command"]),
    (SubmitJob(command=["", "x"]), ["body", "command"]),
    (SubmitJob(command="x" * 101), ["body", "command"]),
    (SubmitJob(command="true", env={"A": "1", "B": "2", "C": "3", "D": "4"}), ["body", "env"]),
    (SubmitJob(command="true", env={"JOBYARD_URL": "x"}), ["body", "env", "JOBYARD_URL"]),
    (SubmitJob(command="true", env={"A=B": "x"}), ["body", "env", "A=B"]),
    (SubmitJob(command="true", outputs=("../up",)), ["body", "outputs", "0"]),
    (SubmitJob(command="true", webhook={"url": "ftp://x"}), ["body", "webhook", "url"]),
])
def test_a_submit_breaking_a_rule_is_refused_and_nothing_is_queued(jobs, ann, cmd, where,
                                                                   intents):
    with pytest.raises(ValidationFailed) as refused:
        jobs.submit(ann, cmd)
    assert refused.value.details["loc"] == where
    assert jobs.list(ann, ListJobs()) == [] and intents == []


def test_a_job_the_server_can_never_run_is_unschedulable(jobs, ann):
    with pytest.raises(Unschedulable) as refused:
        jobs.submit(ann, SubmitJob(command="true", resources=Resources(gpus=3)))
    assert refused.value.details["resources"] == {"gpus": {"requested": 3, "capacity": 2}}
    with pytest.raises(Unschedulable):  # no cluster service: no clusters on this server
        jobs.submit(ann, SubmitJob(command="true", cluster_id="cl_x"))


def test_a_submit_is_queued_named_and_announced(jobs, ann, intents, clock):
    job, created = jobs.submit(ann, SubmitJob(command="/usr/bin/python3 train.py --x 'a b'",
                                              tags=("a", "b", "a")))
    assert created and job.state is JobState.QUEUED and job.name == "python3"
    assert job.tags == ["a", "b"] and job.created_at == clock.now
    assert (job.user_id, job.org_id) == (ann.user_id, ann.org_id)
    assert intents == ["submit"]


def test_an_idempotency_key_replays_its_job_and_refuses_another_request(jobs, ann, intents):
    first, created = jobs.submit(ann, SubmitJob(command="true"), ("k1", "fp-a"))
    again, created_again = jobs.submit(ann, SubmitJob(command="true"), ("k1", "fp-a"))
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict):
        jobs.submit(ann, SubmitJob(command="false"), ("k1", "fp-b"))
    assert len(jobs.list(ann, ListJobs())) == 1 and intents == ["submit"]


def test_who_sees_a_job(jobs, ann, bob, root):
    job, _ = jobs.submit(ann, SubmitJob(command="true"))
    assert jobs.get(ann, job.uid).id == job.id and jobs.get(root, job.id).id == job.id
    with pytest.raises(JobNotFound):  # the native rule: another org's job reads as unknown
        jobs.get(bob, job.uid)
    with pytest.raises(Forbidden):  # the dialects that tell them apart
        jobs.find(bob, job.uid)
    with pytest.raises(JobNotFound):
        jobs.find(bob, "job_unknown")
    with pytest.raises(JobNotFound):  # an Integrate.io account is one org, admins included
        jobs.get_in_org(root, job.id)
    assert jobs.get_in_org(ann, job.id).id == job.id


def test_lists_are_the_callers_org_and_an_admin_sees_every_org(jobs, ann, bob, root):
    mine, _ = jobs.submit(ann, SubmitJob(command="true"))
    theirs, _ = jobs.submit(bob, SubmitJob(command="true"))
    assert [j.id for j in jobs.list(ann, ListJobs())] == [mine.id]
    assert [j.id for j in jobs.list(root, ListJobs())] == [theirs.id, mine.id]
    assert jobs.list(root, ListJobs(), own_org=True) == []
    with pytest.raises(ValidationFailed):
        jobs.list(ann, ListJobs(state="sleeping"))


def test_cancel_ends_a_queued_job_at_once_and_repeats_are_no_ops(jobs, ann, intents):
    job, _ = jobs.submit(ann, SubmitJob(command="true"))
    canceled, changed = jobs.cancel(ann, job.id)
    assert changed and canceled.state is JobState.CANCELED
    assert canceled.message == "canceled before it started"
    again, changed_again = jobs.cancel(ann, job.uid)
    assert not changed_again and again.state is JobState.CANCELED
    assert intents == ["submit", "cancel"]


def test_cancel_of_a_running_job_asks_the_daemon_and_an_ended_one_is_refused(jobs, ann, bob,
                                                                             any_store):
    job, _ = jobs.submit(ann, SubmitJob(command="sleep 9"))
    move(any_store, job.id, JobState.LAUNCHING, JobState.RUNNING)
    with pytest.raises(JobNotFound):
        jobs.cancel(bob, job.id)
    canceling, changed = jobs.cancel(ann, job.id)
    assert changed and canceling.state is JobState.CANCELING and canceling.substate is None
    assert jobs.cancel(ann, job.id)[1] is False
    done, _ = jobs.submit(ann, SubmitJob(command="true"))
    move(any_store, done.id, JobState.LAUNCHING, JobState.RUNNING, JobState.COMPLETED)
    with pytest.raises(Conflict) as refused:
        jobs.cancel(ann, done.id)
    assert refused.value.details == {"state": "completed"}


def test_only_a_finished_job_is_deleted_with_its_files(jobs, ann, any_store, files):
    job, _ = jobs.submit(ann, SubmitJob(command="true"))
    with pytest.raises(Conflict):
        jobs.delete(ann, job.id)
    move(any_store, job.id, JobState.LAUNCHING, JobState.RUNNING, JobState.ERROR)
    assert jobs.delete(ann, job.uid).id == job.id and files.removed == [job.uid]
    with pytest.raises(JobNotFound):
        jobs.get(ann, job.id)


def test_a_queued_job_says_what_it_waits_for(jobs, ann, any_store, clock):
    first, _ = jobs.submit(ann, SubmitJob(command="true", resources=Resources(gpus=2)))
    clock.now += 1
    second, _ = jobs.submit(ann, SubmitJob(command="true", priority=5))
    any_store.kv.put_kv(SCHEDULER_SNAPSHOT, {"free": {"gpus": 1, "cpus": 8, "memory_mb": 0}})
    _, waiting = jobs.view(ann, first.id)
    assert waiting == {"position": 2, "reason": "resources",
                       "waiting_for": {"gpus": {"requested": 2, "free": 1}}}
    assert jobs.waiting(jobs.get(ann, second.id))["position"] == 1
    retried, _ = jobs.submit(ann, SubmitJob(command="true", retry=RetryPolicy(1)))
    any_store.jobs.update_fields(retried.id, {"next_retry_at": clock.now + 30})
    assert jobs.waiting(jobs.get(ann, retried.id))["reason"] == "retry_backoff"
    move(any_store, first.id, JobState.LAUNCHING)
    assert jobs.view(ann, first.id)[1] is None
