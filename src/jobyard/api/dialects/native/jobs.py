"""/v1/jobs: submit, list, read, cancel, pause, resume, delete."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.native import render
from jobyard.api.dialects.native.schemas import JobIn
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute, ascii_int, job_ref
from jobyard.core.inputs import ListJobs
from jobyard.core.models import Principal
from jobyard.errors import ValidationFailed

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictRoute)


@router.post("", status_code=201, summary="Submit a job")
def submit(
    body: JobIn,
    request: Request,
    who: Principal = Depends(principal),
    idempotency_key: str | None = Header(None, max_length=200),
) -> JSON:
    idem = None
    if idempotency_key:
        canonical = orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
        idem = (idempotency_key, hashlib.sha256(canonical).hexdigest())
    svc = services(request)
    job, created = svc.jobs.submit(who, body.to_input(), idem)
    headers = {"Location": f"/v1/jobs/{job.uid}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSON(render.job(job, prices=svc.prices), status_code=201 if created else 200,
                headers=headers)


@router.get("", summary="List jobs, newest first")
def list_jobs(
    request: Request,
    who: Principal = Depends(principal),
    state: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> JSON:
    before = _decode_cursor(cursor) if cursor else None
    query = ListJobs(state=state, tag=tag, name=name, limit=limit + 1, before_id=before)
    svc = services(request)
    jobs = svc.jobs.list(who, query)
    page, more = jobs[:limit], len(jobs) > limit
    next_cursor = _encode_cursor(page[-1].id) if more and page else None
    headers = {}
    if next_cursor:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        params["cursor"] = next_cursor
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    items = [render.job(j, prices=svc.prices) for j in page]
    return JSON({"items": items, "next_cursor": next_cursor}, headers=headers)


@router.get("/{ref}", summary="Get a job")
async def get_job(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job, waiting = await read(svc, svc.jobs.view, who, job_ref(ref))
    return JSON(render.job(job, waiting, svc.prices))


@router.post("/{ref}/cancel", status_code=202, summary="Cancel a job")
def cancel(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job, changed = svc.jobs.cancel(who, job_ref(ref))
    return JSON(render.job(job, prices=svc.prices), status_code=202 if changed else 200)


@router.post("/{ref}/pause", status_code=202, summary="Pause a running job")
def pause(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job, changed = svc.jobs.pause(who, job_ref(ref))
    return JSON(render.job(job, prices=svc.prices), status_code=202 if changed else 200)


@router.post("/{ref}/resume", status_code=202, summary="Resume a paused job")
def resume(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    job, changed = svc.jobs.resume(who, job_ref(ref))
    return JSON(render.job(job, prices=svc.prices), status_code=202 if changed else 200)


@router.delete("/{ref}", summary="Delete a finished job (its logs and outputs too)")
def delete(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    job = services(request).jobs.delete(who, job_ref(ref))
    return JSON({"id": job.uid, "deleted": True})


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        number = ascii_int(value)
        if kind == "id" and number is not None:
            return min(number, MAX_ROW_ID)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed("invalid cursor", {"loc": ["query", "cursor"]})
