"""TelemetryService (core/telemetry.py): a job reports with its own token, for its own
attempt, while it is active."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.core.inputs import SubmitJob
from jobyard.core.jobs import JobService
from jobyard.core.models import Job, Resources
from jobyard.core.ports import Transition
from jobyard.core.progress import view as progress_view
from jobyard.core.states import JobState
from jobyard.core.telemetry import TelemetryService
from jobyard.core.tokens import Signer
from jobyard.errors import Conflict, Forbidden, Unauthorized
from tests.core.conftest import Clock, add_user


@pytest.fixture
def signer(clock: Clock) -> Signer:
    return Signer(b"s" * 32, clock)


@pytest.fixture
def telemetry(any_store: Any, signer: Signer, clock: Clock) -> TelemetryService:
    return TelemetryService(any_store.jobs, any_store.telemetry, signer, clock)


def running(any_store: Any, clock: Clock, command: str = "train") -> Job:
    who = add_user(any_store, f"u{len(any_store.accounts.list_users())}", "lab")
    job, _ = JobService(any_store.jobs, any_store.kv, Resources(0, 8, 0), clock=clock).submit(
        who, SubmitJob(command=command))
    for state in (JobState.LAUNCHING, JobState.RUNNING):
        any_store.jobs.apply([Transition(job.id, state, {})])
    return any_store.jobs.get_job(job.id)


def test_a_report_moves_progress_and_stale_ones_are_ignored(telemetry, any_store, signer,
                                                            clock):
    job = running(any_store, clock)
    token = signer.job_token(job.uid, 1)
    done = telemetry.report(token, job.uid, [{"seq": 2, "progress": 40, "step": "train"},
                                             {"seq": 1, "progress": 10}])
    assert (done.accepted, done.ignored, done.last_seq) == (1, 1, 2)
    shown = progress_view(done.job.telemetry, 1)
    assert shown["progress"] == 40 and shown["current_step"] == "train"
    by_number = telemetry.report(token, str(job.id), [{"seq": 3, "progress": 50}])
    assert by_number.accepted == 1
    assert progress_view(any_store.jobs.get_job(job.id).telemetry, 1)["progress"] == 50


def test_a_token_works_for_its_job_and_attempt_only(telemetry, any_store, signer, clock):
    job = running(any_store, clock)
    other = running(any_store, clock)
    with pytest.raises(Unauthorized):
        telemetry.report(None, job.uid, [{"progress": 1}])
    with pytest.raises(Unauthorized):
        telemetry.report("jyt_forged.1.abc", job.uid, [{"progress": 1}])
    with pytest.raises(Forbidden):
        telemetry.report(signer.job_token(other.uid, 1), job.uid, [{"progress": 1}])
    with pytest.raises(Forbidden):
        telemetry.report(signer.job_token(other.uid, 1), str(job.id), [{"progress": 1}])
    with pytest.raises(Unauthorized):  # an earlier (or later) attempt's token
        telemetry.report(signer.job_token(job.uid, 2), job.uid, [{"progress": 1}])


def test_reports_are_closed_once_the_job_ended(telemetry, any_store, signer, clock):
    job = running(any_store, clock)
    any_store.jobs.apply([Transition(job.id, JobState.COMPLETED, {})])
    with pytest.raises(Conflict) as closed:
        telemetry.report(signer.job_token(job.uid, 1), job.uid, [{"progress": 99}])
    assert closed.value.details == {"state": "completed"}
    assert progress_view(any_store.jobs.get_job(job.id).telemetry, 1)["progress"] is None


def test_links_carry_their_parts_until_they_expire(signer, clock):
    token = signer.link("download", ("job_a", "1", "model.pt"), ttl_s=60)
    assert signer.read_link("download", token) == ("job_a", "1", "model.pt")
    assert signer.read_link("upload", token) is None  # one kind is never another
    clock.now += 61
    assert signer.read_link("download", token) is None
