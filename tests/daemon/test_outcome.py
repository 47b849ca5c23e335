from jobyard.core.models import Job, Resources, RetryPolicy
from jobyard.core.states import JobState
from jobyard.daemon.outcome import decide
from jobyard.executors.base import ExitStatus


def make_job(state=JobState.RUNNING, retry=RetryPolicy(), attempt=1, limit=None) -> Job:
    return Job(
        id=7, uid="job_x", user_id=1, org_id=1, name="x", command="true", env={}, workdir=None,
        resources=Resources(), instance_type=None, priority=0, time_limit_s=limit, retry=retry,
        tags=[], state=state, created_at=0.0, attempt=attempt,
    )


def test_exit_codes_map_to_completed_and_error():
    ok = decide(make_job(), ExitStatus("exited", exit_code=0), 10.0, False)
    assert ok.to is JobState.COMPLETED and ok.fields["exit_code"] == 0
    bad = decide(make_job(), ExitStatus("exited", exit_code=3), 10.0, False)
    assert bad.to is JobState.ERROR and bad.fields["exit_code"] == 3
    assert bad.fields["error"]["code"] == "NONZERO_EXIT"
    killed = decide(make_job(), ExitStatus("exited", signal=9), 10.0, False)
    assert killed.to is JobState.ERROR and killed.fields["exit_code"] == 137
    assert "SIGKILL" in killed.fields["error"]["message"]


def test_infrastructure_failures_are_failed_not_error():
    launch = decide(make_job(), ExitStatus("launch_failed", message="no such file"), 1.0, False)
    assert launch.to is JobState.FAILED and launch.fields["error"]["code"] == "LAUNCH_FAILED"
    lost = decide(make_job(), ExitStatus("lost", message="gone"), 1.0, False)
    assert lost.to is JobState.FAILED and lost.fields["error"]["code"] == "LOST"


def test_cancel_and_timeout():
    receipt = {"signals": ["SIGTERM"], "sigterm_obeyed": True}
    canceled = decide(make_job(JobState.CANCELING), ExitStatus("stopped", receipt=receipt), 1.0,
                      False)
    assert canceled.to is JobState.CANCELED and canceled.fields["cancel_receipt"] == receipt
    # It exited on its own before the stop landed: its real outcome stands.
    raced = decide(make_job(JobState.CANCELING), ExitStatus("exited", exit_code=0), 1.0, False)
    assert raced.to is JobState.COMPLETED
    timeout = decide(make_job(limit=5), ExitStatus("stopped"), 1.0, True)
    assert timeout.to is JobState.TIMEOUT and timeout.fields["error"]["code"] == "TIMEOUT"


def test_retry_policy_requeues_with_backoff_then_gives_up():
    policy = RetryPolicy(max_retries=2, backoff_s=4, on=("error",))
    first = decide(make_job(retry=policy), ExitStatus("exited", exit_code=1), 100.0, False)
    assert first.to is JobState.QUEUED
    assert first.fields["attempt"] == 2 and first.fields["next_retry_at"] == 104.0
    second = decide(make_job(retry=policy, attempt=2), ExitStatus("exited", exit_code=1), 100.0,
                    False)
    assert second.fields["next_retry_at"] == 108.0
    last = decide(make_job(retry=policy, attempt=3), ExitStatus("exited", exit_code=1), 100.0,
                  False)
    assert last.to is JobState.ERROR
    not_covered = decide(make_job(retry=policy), ExitStatus("launch_failed"), 100.0, False)
    assert not_covered.to is JobState.FAILED
    canceled = decide(make_job(JobState.CANCELING, retry=policy), ExitStatus("stopped"), 1.0,
                      False)
    assert canceled.to is JobState.CANCELED


def test_a_stop_for_a_service_reason_fails_with_that_error():
    job = make_job(retry=RetryPolicy(max_retries=3, on=("failed",)))
    job.stop_error = {"code": "BUDGET_EXCEEDED", "message": "over budget", "details": {}}
    out = decide(job, ExitStatus("stopped"), 1.0, False)
    assert out.to is JobState.FAILED and out.fields["error"]["code"] == "BUDGET_EXCEEDED"


def test_a_retry_starts_with_a_clean_record_of_the_attempt():
    job = make_job(retry=RetryPolicy(max_retries=1, on=("timeout", "error")), limit=5)
    job.timed_out = True
    retry = decide(job, ExitStatus("stopped"), 1.0, True)
    assert retry.to is JobState.QUEUED and retry.event["attempt_ended"]["outcome"] == "timeout"
    assert retry.fields["timed_out"] is False and retry.fields["stop_error"] is None


def test_killed_by_the_kernel_for_memory_is_out_of_memory_with_the_peak():
    job = make_job()
    status = ExitStatus("exited", signal=9, memory_peak_bytes=64 * 2**20,
                        memory_limit_bytes=64 * 2**20, oom_kills=1)
    oom = decide(job, status, 1.0, False)
    assert oom.to is JobState.FAILED and oom.fields["exit_code"] == 137
    error = oom.fields["error"]
    assert error["code"] == "OUT_OF_MEMORY"
    assert error["message"] == ("out of memory: went over its memory limit of 64 MiB (peak 64 MiB);"
                                " the kernel killed 1 of its processes")
    assert error["details"] == {"memory_limit_bytes": 64 * 2**20,
                                "memory_peak_bytes": 64 * 2**20, "oom_kills": 1}
    # A job that survived the kill of one of its processes and exited 0 completed.
    survived = decide(job, ExitStatus("exited", exit_code=0, oom_kills=1), 1.0, False)
    assert survived.to is JobState.COMPLETED
