"""Mapping between table rows and domain objects."""

from __future__ import annotations

from typing import Any

from jobyard.core.models import Job, JobEvent, Resources, RetryPolicy
from jobyard.core.states import JobState

# Columns a caller may set through Store.update_fields / Transition.fields.
WRITABLE = frozenset(
    {
        "substate",
        "started_at",
        "finished_at",
        "exit_code",
        "message",
        "error",
        "attempt",
        "next_retry_at",
        "cancel_requested_at",
        "runtime",
        "assigned",
        "cancel_receipt",
        "telemetry",
        "webhook",
        "timed_out",
        "stop_error",
        "paused_at",
        "paused_s",
    }
)


def job_from_row(r: Any) -> Job:
    retry = r.retry or {}
    return Job(
        id=r.id,
        uid=r.uid,
        user_id=r.user_id,
        org_id=r.org_id,
        name=r.name,
        command=r.command,
        env=r.env,
        workdir=r.workdir,
        resources=Resources(gpus=r.gpus, cpus=r.cpus, memory_mb=r.memory_mb),
        instance_type=r.instance_type,
        priority=r.priority,
        time_limit_s=r.time_limit_s,
        retry=RetryPolicy(
            max_retries=retry.get("max_retries", 0),
            backoff_s=retry.get("backoff_s", 10.0),
            on=tuple(retry.get("on", ("error", "failed"))),
        ),
        tags=list(r.tags),
        state=JobState(r.state),
        substate=r.substate,
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        updated_at=r.updated_at,
        exit_code=r.exit_code,
        message=r.message,
        error=r.error,
        attempt=r.attempt,
        next_retry_at=r.next_retry_at,
        cancel_requested_at=r.cancel_requested_at,
        runtime=r.runtime,
        assigned=r.assigned,
        cancel_receipt=r.cancel_receipt,
        dialect=r.extra or {},
        telemetry=r.telemetry or {},
        webhook=r.webhook,
        cluster_id=r.cluster_id,
        cluster_name=r.cluster_name,
        teardown_cluster=bool(r.teardown_cluster),
        output_patterns=list(r.output_patterns or ()),
        timed_out=bool(r.timed_out),
        stop_error=r.stop_error,
        paused_at=r.paused_at,
        paused_s=float(r.paused_s or 0.0),
        workspace_replica=r.workspace_replica,
    )


def job_to_row(job: Job) -> dict[str, Any]:
    return {
        "uid": job.uid,
        "user_id": job.user_id,
        "org_id": job.org_id,
        "name": job.name,
        "command": job.command,
        "env": job.env,
        "workdir": job.workdir,
        "gpus": job.resources.gpus,
        "cpus": job.resources.cpus,
        "memory_mb": job.resources.memory_mb,
        "instance_type": job.instance_type,
        "priority": job.priority,
        "time_limit_s": job.time_limit_s,
        "retry": {
            "max_retries": job.retry.max_retries,
            "backoff_s": job.retry.backoff_s,
            "on": list(job.retry.on),
        },
        "tags": job.tags,
        "state": str(job.state),
        "substate": job.substate,
        "created_at": job.created_at,
        "updated_at": job.created_at,
        "attempt": job.attempt,
        "extra": job.dialect,
        "telemetry": job.telemetry or None,
        "webhook": job.webhook,
        "cluster_id": job.cluster_id,
        "cluster_name": job.cluster_name,
        "teardown_cluster": job.teardown_cluster,
        "output_patterns": job.output_patterns,
        "timed_out": job.timed_out,
        "stop_error": job.stop_error,
        "paused_at": job.paused_at,
        "paused_s": job.paused_s,
        "workspace_replica": job.workspace_replica,
    }


def event_from_row(r: Any) -> JobEvent:
    return JobEvent(id=r.id, job_id=r.job_id, ts=r.ts, kind=r.kind, state=r.state, data=r.data)
