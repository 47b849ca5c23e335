"""Jobs as the native API shows them."""

from __future__ import annotations

import time
from typing import Any

from jobyard.core.cost import Prices, cost_view
from jobyard.core.models import Job
from jobyard.core.progress import view as progress_view
from jobyard.core.times import iso


def job(
    j: Job, waiting: dict[str, Any] | None = None, prices: Prices | None = None
) -> dict[str, Any]:
    """The native job object; ``prices`` adds its live cost."""
    telemetry = j.telemetry or {}
    if waiting and "estimated_start" in waiting:
        waiting = {**waiting, "estimated_start": iso(waiting["estimated_start"])}
    return {
        "id": j.uid,
        "number": j.id,
        "name": j.name,
        "state": str(j.state),
        "substate": j.substate,
        "command": j.command,
        "env": j.env,
        "workdir": j.workdir,
        "resources": {
            "gpus": j.resources.gpus, "cpus": j.resources.cpus, "memory_mb": j.resources.memory_mb,
        },
        "instance_type": j.instance_type,
        "priority": j.priority,
        "time_limit_s": j.time_limit_s,
        "retry": {
            "max_retries": j.retry.max_retries, "backoff_s": j.retry.backoff_s,
            "on": list(j.retry.on),
        },
        "tags": j.tags,
        "attempt": j.attempt,
        "created_at": iso(j.created_at),
        "started_at": iso(j.started_at),
        "finished_at": iso(j.finished_at),
        "exit_code": j.exit_code,
        "message": j.message,
        "error": j.error,
        "next_retry_at": iso(j.next_retry_at),
        "cancel_requested_at": iso(j.cancel_requested_at),
        # Paused since (null unless paused), and the seconds this attempt was paused before.
        "paused_at": iso(j.paused_at),
        "paused_s": round(j.paused_s, 3),
        "assigned": j.assigned,
        "cluster": cluster(j),
        "cancel_receipt": j.cancel_receipt,
        "waiting": waiting,
        "owner": {"user_id": j.user_id, "org_id": j.org_id},
        "webhook": j.webhook,
        **_progress(j),
        "cost": cost_view(j, time.time(), prices) if prices is not None else None,
        "cold_start": telemetry.get("cold_start"),
        "efficiency": telemetry.get("efficiency"),
        "outputs": telemetry.get("outputs"),
    }


def cluster(j: Job) -> dict[str, Any]:
    """Which cluster runs (or will run) the job: a claimed one, or its own ephemeral one."""
    assigned = j.assigned or {}
    if j.cluster_id is None:
        return {"id": f"ephemeral-{j.uid}", "ephemeral": True, "instance_type": j.instance_type,
                "gpus": assigned.get("gpus")}
    return {"id": j.cluster_id, "ephemeral": False,
            "instance": (assigned.get("cluster") or {}).get("instance"),
            "name": j.cluster_name}


def _progress(j: Job) -> dict[str, Any]:
    """What the job reported of its current attempt: progress, step, metadata, ETA."""
    view = progress_view(j.telemetry, j.attempt) if j.telemetry else _NO_PROGRESS
    return {**view, "estimated_completion": iso(view["estimated_completion"])}


_NO_PROGRESS = progress_view({}, 0)
