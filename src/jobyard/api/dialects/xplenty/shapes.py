"""Integrate.io's bodies: the seed's ``Job`` (and ``JobOutput``), clusters, packages and
schedules as the ``xplenty`` SDK reads them, the ``{"message": ...}`` error body, the
``Link`` header of collections.

Every id is an integer; every time ISO 8601 (UTC) or null; a job always carries a numeric
``progress`` (0-1), ``variables``/``dynamic_variables`` objects, ``errors`` (a string, ``""``
when none) and ``completed_at`` (null until it ended). Routes of this dialect use
:class:`XplentyRoute`, so these shapes apply to them only.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from starlette.datastructures import URL

from jobyard.api.dialects.envelope import envelope_route
from jobyard.api.dialects.states import dialect_status
from jobyard.api.errors import http_status
from jobyard.api.responses import JSON
from jobyard.core.clusters import Cluster, ClusterState
from jobyard.core.models import Job
from jobyard.core.packages import DIALECT_KEY, Package, Schedule
from jobyard.core.progress import view as progress_view
from jobyard.core.states import JobState
from jobyard.core.times import iso
from jobyard.errors import JobyardError

MEDIA_TYPE = "application/vnd.xplenty+json; version=2"

# Cluster states as Integrate.io names them: (while its request waits, while it is processed).
CLUSTER_STATUS: dict[ClusterState, tuple[str, str]] = {
    ClusterState.PENDING: ("pending", "creating"),
    ClusterState.READY: ("available", "available"),
    ClusterState.RELEASING: ("pending_terminate", "terminating"),
    ClusterState.RELEASED: ("terminated", "terminated"),
    ClusterState.FAILED: ("error", "error"),
}


class XJSON(JSON):
    media_type = MEDIA_TYPE


# errors ------------------------------------------------------------------------------------
def error_body(status: int, message: str, headers: dict[str, str] | None = None) -> XJSON:
    return XJSON({"message": message}, status_code=status, headers=headers)


def error_response(exc: JobyardError) -> XJSON:
    return error_body(http_status(exc), exc.message)


def validation_message(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return f"invalid request: {where or 'body'}: {first.get('msg', 'invalid')}"


def _with_limit_headers(request: Request, response: Response) -> Response:
    """The caller's rate limit (``X-RateLimit-*``) on every answer."""
    for name, value in getattr(request.state, "xplenty_headers", {}).items():
        response.headers.setdefault(name, value)
    return response


# What every route documents of its errors.
ERROR_SCHEMA = {"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"}}}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {
    "description": "An error: `{\"message\"}`, the SDK's exception text",
    "content": {MEDIA_TYPE: {"schema": ERROR_SCHEMA}}}}

# Errors as ``{"message": ...}``: the SDK's exception text.
XplentyRoute = envelope_route(
    "Integrate.io",
    validation=lambda errors: error_body(422, validation_message(errors)),
    error=error_response,
    crash=lambda: error_body(500, "internal error on the server; see its log"),
    http=lambda exc: error_body(exc.status_code, str(exc.detail)),
    finish=_with_limit_headers,
    responses=ERRORS,
)


# collections -------------------------------------------------------------------------------
def link_header(url: URL, offset: int, limit: int, total: int) -> str:
    """RFC 5988 links to the first, previous, next and last pages."""
    def at(o: int) -> str:
        return f'<{url.include_query_params(offset=o, limit=limit)}>'

    last = max(0, (total - 1) // limit * limit)
    links = [f'{at(0)}; rel="first"']
    if offset > 0:
        links.append(f'{at(max(0, offset - limit))}; rel="prev"')
    if offset + limit < total:
        links.append(f'{at(offset + limit)}; rel="next"')
    links.append(f'{at(last)}; rel="last"')
    return ", ".join(links)


def collection(items: list[dict[str, Any]], url: URL, offset: int, limit: int,
               total: int) -> XJSON:
    """A bare JSON array, with ``Link`` and ``X-Total-Count``."""
    return XJSON(items, headers={"Link": link_header(url, offset, limit, total),
                                 "X-Total-Count": str(total)})


# jobs --------------------------------------------------------------------------------------
def job_status(job: Job) -> str:
    return dialect_status("xplenty", job.state, job.substate)


def progress(job: Job) -> float:
    """0-1: 1.0 once completed; otherwise what the job last reported (0 before that)."""
    if job.state is JobState.COMPLETED:
        return 1.0
    percent = progress_view(job.telemetry or {}, job.attempt)["progress"]
    if percent is None:
        return 0.0
    return round(min(1.0, max(0.0, float(percent) / 100.0)), 6)


def _runtime(job: Job, now: float) -> int:
    if job.started_at is None:
        return 0
    return max(0, int((job.finished_at or now) - job.started_at))


def job_view(job: Job, facts: dict[str, Any], origin: str, base: str,
             status: str | None = None) -> dict[str, Any]:
    """The seed's ``Job`` (plus ``completed_at``); ``facts`` from ``store.jobs.job_facts``;
    ``status`` overrides the stored one (a stop just requested)."""
    x = job.dialect.get(DIALECT_KEY) or {}
    word = status or job_status(job)
    ended = job.finished_at if job.state.is_terminal else None
    outputs = [_output(job, o, origin) for o in facts["outputs"].get(job.id, [])]
    view: dict[str, Any] = {
        "id": job.id,
        "status": word,
        "owner_id": job.user_id,
        "progress": progress(job),
        "outputs_count": len(outputs),
        "outputs": outputs,
        "variables": dict(x.get("variables") or {}),
        "dynamic_variables": dict(x.get("dynamic_variables") or {}),
        "started_at": iso(job.started_at),
        "created_at": iso(job.created_at),
        "failed_at": iso(ended) if word == "failed" else None,
        "updated_at": iso(job.updated_at or job.created_at),
        "completed_at": iso(ended),
    }
    cluster = facts["clusters"].get(job.cluster_id) if job.cluster_id else None
    if cluster is None and x.get("cluster_id") is not None:
        cluster = {"id": x["cluster_id"], "name": None}
    if cluster is not None:
        view["cluster_id"] = cluster["id"]
    if x.get("package_id") is not None:
        view["package_id"] = x["package_id"]
    view["errors"] = (job.message or "failed") if word == "failed" else ""
    view["runtime_in_seconds"] = _runtime(job, time.time())
    view["url"] = f"{base}/jobs/{job.id}"
    view["html_url"] = f"{origin}/v1/jobs/{job.uid}"
    view["log_url"] = f"{origin}/v1/jobs/{job.uid}/logs" if job.started_at else None
    view["creator"] = creator(job.user_id, facts["users"])
    if x.get("package_id") is not None:
        view["package"] = {"id": x["package_id"], "name": x.get("package_name") or "",
                           "url": f"{base}/packages/{x['package_id']}"}
    if cluster is not None:
        view["cluster"] = {"id": cluster["id"], "name": cluster.get("name") or "",
                           "url": f"{base}/clusters/{cluster['id']}"}
    return view


def _output(job: Job, o: dict[str, Any], origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": o["id"], "name": o["name"]}
    if o["records"] is not None:  # lines of a line-based file, or what the job declared
        out["records_count"] = int(o["records"])
    out |= {"created_at": iso(o["created_at"]), "updated_at": iso(o["created_at"]),
            "url": f"{origin}/v1/jobs/{job.uid}/outputs/{quote(o['name'])}"}
    return out


def creator(user_id: int, users: dict[int, str]) -> dict[str, Any]:
    return {"type": "User", "display_name": users.get(user_id, ""), "id": user_id}


# clusters ----------------------------------------------------------------------------------
def cluster_status(c: Cluster, facts: dict[str, Any]) -> str:
    waiting, processing = CLUSTER_STATUS[c.state]
    return processing if facts.get("open") in ("PROCESSING", "RETRYING") else waiting


def cluster_view(c: Cluster, facts: dict[str, Any], meta: dict[str, Any],
                 users: dict[int, str], origin: str, base: str) -> dict[str, Any]:
    """A cluster as the SDK's ``Cluster`` reads it; ``meta``: what the Integrate.io create
    recorded (type, description, idle settings), defaults for clusters made elsewhere."""
    released = c.state is ClusterState.RELEASED
    return {
        "id": c.id,
        "name": c.name,
        "description": meta.get("description", ""),
        "status": cluster_status(c, facts),
        "owner_id": c.user_id,
        "nodes": c.count,
        "type": meta.get("type", "production"),
        "instance_type": c.instance_type,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "available_since": iso(facts.get("claimed_at")),
        "terminated_at": iso(facts.get("released_at") or c.updated_at) if released else None,
        "running_jobs_count": int(facts.get("live_jobs") or 0),
        "terminate_on_idle": bool(meta.get("terminate_on_idle", False)),
        "time_to_idle": int(meta.get("time_to_idle", 0)),
        "url": f"{base}/clusters/{c.id}",
        "html_url": f"{origin}/v1/clusters/{c.uid}",
        "creator": creator(c.user_id, users),
    }


# packages and schedules --------------------------------------------------------------------
def package_view(p: Package, users: dict[int, str], origin: str, base: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "variables": dict(p.variables),
        "owner_id": p.user_id,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "url": f"{base}/packages/{p.id}",
        "html_url": f"{origin}/v1/packages/{p.id}",
        "creator": creator(p.user_id, users),
        "command": p.command,
        "resources": {"gpus": p.resources.gpus, "cpus": p.resources.cpus,
                      "memory_mb": p.resources.memory_mb},
    }


def schedule_view(s: Schedule, users: dict[int, str], origin: str, base: str
                  ) -> dict[str, Any]:
    last = s.last_run_status
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "owner_id": s.user_id,
        "status": s.status,
        "start_at": iso(s.start_at),
        "next_run_at": iso(s.next_run_at),
        "interval_amount": s.interval_amount,
        "interval_unit": s.interval_unit,
        "last_run_at": iso(s.last_run_at),
        "last_run_status": dialect_status("xplenty", JobState(last)) if last else None,
        "execution_count": s.execution_count,
        "variables": dict(s.variables),
        # Each run is a job of the package on its own allocation (an ephemeral cluster).
        "task": {"nodes": 1, "packages": [{"package_id": s.package_id,
                                           "variables": dict(s.variables)}]},
        "package_id": s.package_id,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "url": f"{base}/schedules/{s.id}",
        "html_url": f"{origin}/v1/schedules/{s.id}",
        "creator": creator(s.user_id, users),
    }
