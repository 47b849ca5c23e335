"""/v1/jobs/{id}/outputs: what a job left in its output directory, downloadable (with Range)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from jobyard.api.auth import principal, runtime
from jobyard.api.dialects.native.jobs import job_ref
from jobyard.api.dialects.native.render import iso
from jobyard.api.responses import JSON
from jobyard.core.models import Principal
from jobyard.errors import NotFound, ValidationFailed
from jobyard.outputs.collector import output_dir
from jobyard.outputs.files import resolve_inside

router = APIRouter(prefix="/v1/jobs", tags=["outputs"])


@router.get("/{ref}/outputs", summary="List a job's collected outputs")
def list_outputs(
    ref: str, request: Request, who: Principal = Depends(principal),
    attempt: int | None = Query(None, ge=1),
) -> JSON:
    rt = runtime(request)
    job = rt.service.get(who, job_ref(ref))
    items = []
    for row in rt.store.telemetry.list_outputs(job.id, attempt):
        path = f"/v1/jobs/{job.uid}/outputs/{quote(row['name'])}?attempt={row['attempt']}"
        items.append({**row, "created_at": iso(row["created_at"]), "url": path})
    return JSON({"items": items})


@router.get("/{ref}/outputs/{name:path}", summary="Download an output (Range supported)")
def download(
    ref: str, name: str, request: Request, who: Principal = Depends(principal),
    attempt: int | None = Query(None, ge=1),
) -> FileResponse:
    rt = runtime(request)
    job = rt.service.get(who, job_ref(ref))
    listed = {(r["attempt"], r["name"]) for r in rt.store.telemetry.list_outputs(job.id, attempt)}
    root = output_dir(rt.config.data_dir, job.uid, attempt or job.attempt)
    path = resolve_inside(root, name)
    if path is None:
        raise ValidationFailed("the output name escapes the job's output directory",
                               {"loc": ["path", "name"]})
    if (attempt or job.attempt, name) not in listed or not path.is_file():
        raise NotFound(f"job {job.uid} has no output named {name!r}")
    return FileResponse(path, filename=path.name)
