"""Webhooks as the domain knows them: event types and filters, payloads, signing secrets.

Signing, delivery and the policy of which addresses a webhook may target live in
``jobyard.events`` (Standard Webhooks through its reference library).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from jobyard.core.models import Job
from jobyard.core.times import iso

# A job's state -> the event type its webhook receives.
STATE_EVENTS = {
    "queued": "job.queued",  # on submit, and again before each retry
    "launching": "job.launching",
    "running": "job.running",
    "paused": "job.paused",
    "canceling": "job.canceling",
    "completed": "job.completed",
    "error": "job.failed",  # non-zero exit
    "failed": "job.failed",  # infrastructure failure
    "timeout": "job.timeout",
    "canceled": "job.canceled",
}
OTHER_EVENTS = {"progress": "job.progress"}  # job_events kinds other than "state"
EVENT_TYPES = frozenset([*STATE_EVENTS.values(), *OTHER_EVENTS.values()])
TERMINAL_TYPES = frozenset({"job.completed", "job.failed", "job.timeout", "job.canceled"})
DEFAULT_EVENTS = sorted(TERMINAL_TYPES)  # when a webhook names no events
ALL = "*"


def event_type(kind: str, data: dict[str, Any]) -> str | None:
    """The webhook event type of a job event, or None for kinds webhooks never carry."""
    if kind == "state":
        return STATE_EVENTS.get(str(data.get("to")))
    return OTHER_EVENTS.get(kind)


def normalize_events(names: Iterable[str] | None) -> list[str]:
    """``["completed", "job.failed"]`` -> ``["job.completed", "job.failed"]``; ``*`` is all.

    Raises ValueError naming the unknown ones. None (or empty) means the terminal events.
    """
    wanted: list[str] = []
    unknown: list[str] = []
    for name in names or DEFAULT_EVENTS:
        full = name if name == ALL or name.startswith("job.") else f"job.{name}"
        if full != ALL and full not in EVENT_TYPES:
            unknown.append(name)
        elif full not in wanted:
            wanted.append(full)
    if unknown:
        known = ", ".join(sorted(t.removeprefix("job.") for t in EVENT_TYPES))
        raise ValueError(f"unknown webhook events {unknown}; known: {known}, or '*'")
    return [ALL] if ALL in wanted else sorted(wanted)


def wants(events: Sequence[str] | None, etype: str) -> bool:
    events = events or DEFAULT_EVENTS
    return etype in events or ALL in events


def payload(
    job: Job, etype: str, event_id: int, ts: float, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The body of one webhook message (Standard Webhooks' ``type``/``timestamp``/``data``).

    The terminal event carries the job's telemetry (cost, efficiency report, last progress).
    """
    body: dict[str, Any] = {
        "job": {
            "id": job.uid, "number": job.id, "name": job.name, "state": str(job.state),
            "substate": job.substate, "attempt": job.attempt, "tags": job.tags,
            "exit_code": job.exit_code, "message": job.message, "error": job.error,
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at),
            "owner": {"user_id": job.user_id, "org_id": job.org_id},
        },
        "event": {"id": event_id, "kind": kind, "ts": iso(ts), "data": data},
    }
    if etype in TERMINAL_TYPES:
        body["telemetry"] = job.telemetry or {}
    return {"type": etype, "timestamp": iso(ts), "data": body}


def new_secret() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(delivery_id: int) -> str:
    return f"msg_{delivery_id}"
