"""Integrate.io's jobs: run a package on a cluster, list, get (the seed's ``Job``), stop.

Every job of the account is shown, whichever API made it: a job without a package has no
``package_id``/``package``, one without a cluster (its own allocation) no ``cluster_id``/
``cluster``, and its ``variables``/``dynamic_variables`` are ``{}``. A stop answers 200 with
the job: ``pending_stoppage`` (the stop is recorded; the daemon stops its processes at once),
then ``stopping`` while they go, ``stopped`` once they are gone; a queued job is ``stopped``
at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from jobyard.api.dialects.states import dialect_status
from jobyard.api.dialects.xplenty import params
from jobyard.api.dialects.xplenty.auth import Caller, charged
from jobyard.api.dialects.xplenty.shapes import XJSON, XplentyRoute, collection, job_view
from jobyard.core.inputs import RunPackage
from jobyard.core.models import Job
from jobyard.core.states import JobState, Substate
from jobyard.errors import Conflict, ValidationFailed

router = APIRouter(prefix="/{account_id}/api", tags=["integrate.io"], route_class=XplentyRoute)
JobId = Path(ge=1, le=2**31 - 1, description="the job's integer id")


def states_named(word: str) -> list[str] | None:
    """The core states shown as ``word`` (None for ``all``); from the one status table."""
    if word == "all":
        return None
    found = {str(s) for s in JobState
             if word in (dialect_status("xplenty", s), dialect_status("xplenty", s,
                                                                      Substate.STOPPING))}
    if not found:
        raise ValidationFailed(f"invalid request: status: unknown status '{word}'",
                               {"loc": ["query", "status"], "type": "value_error"})
    return sorted(found)


def render(c: Caller, jobs: list[Job], status: str | None = None) -> list[dict[str, Any]]:
    facts = c.svc.jobs.facts(jobs)
    return [job_view(j, facts, c.origin, c.base, status) for j in jobs]


def visible(c: Caller, job_id: int) -> Job:
    return c.svc.jobs.get_in_org(c.who, job_id)


@router.get("/jobs", summary="List jobs, newest first (Integrate.io)")
def list_jobs(request: Request, c: Caller = Depends(charged)) -> XJSON:
    offset, limit = params.page(request)
    states = states_named(request.query_params.get("status") or "all")
    jobs, total = c.svc.jobs.page(c.who, offset, limit, states)
    return collection(render(c, jobs), request.url, offset, limit, total)


@router.get("/jobs/{job_id}", summary="Get job information (Integrate.io)")
def get_job(job_id: int = JobId, c: Caller = Depends(charged)) -> XJSON:
    return XJSON(render(c, [visible(c, job_id)])[0])


@router.post("/jobs", status_code=201, summary="Run a package as a job (Integrate.io)")
async def run_job(request: Request, c: Caller = Depends(charged)) -> XJSON:
    data = await params.body(request, "job")
    cluster_id = params.row_id(data, "cluster_id")
    package_id = params.row_id(data, "package_id")

    def run() -> dict[str, Any]:
        assert cluster_id is not None and package_id is not None
        cluster = c.svc.clusters.by_number(c.who, cluster_id)
        service = c.packages
        package = service.get_package(c.who, package_id)
        try:
            job, _ = service.run(c.who, package, RunPackage(
                data.get("variables"), data.get("dynamic_variables"), cluster))
        except Conflict as exc:  # the core names the cluster by its string id
            raise Conflict(f"cluster {cluster_id} is not available; jobs need an available "
                           "cluster", exc.details) from exc
        return render(c, [job])[0]

    return XJSON(await asyncio.to_thread(run), status_code=201)


@router.delete("/jobs/{job_id}", summary="Stop a job (Integrate.io)")
def stop_job(job_id: int = JobId, c: Caller = Depends(charged)) -> XJSON:
    job = visible(c, job_id)
    try:
        job, changed = c.svc.jobs.cancel(c.who, job.id)
    except Conflict as exc:
        ended = dialect_status("xplenty", visible(c, job_id).state)
        raise Conflict(f"job {job_id} already ended ({ended}); only a running or queued job "
                       "can be stopped", exc.details) from exc
    # Just recorded, the daemon has not begun to stop it: the stop is pending (no substate).
    fresh = changed and job.state is JobState.CANCELING
    status = dialect_status("xplenty", JobState.CANCELING) if fresh else None
    return XJSON(render(c, [job], status)[0])
