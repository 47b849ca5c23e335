"""/v1/jobs/{id}/outputs: what a job left in its output directory, downloadable (with Range)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from jobyard.api.auth import principal
from jobyard.api.deps import services
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute, job_ref
from jobyard.core.models import Principal
from jobyard.core.times import iso

router = APIRouter(prefix="/v1/jobs", tags=["outputs"], route_class=StrictRoute)


@router.get("/{ref}/outputs", summary="List a job's collected outputs")
def list_outputs(
    ref: str, request: Request, who: Principal = Depends(principal),
    attempt: int | None = Query(None, ge=1, le=MAX_ROW_ID),
) -> JSON:
    svc = services(request)
    job = svc.jobs.get(who, job_ref(ref))
    items = []
    for row in svc.files.outputs(job, attempt):
        path = f"/v1/jobs/{job.uid}/outputs/{quote(row['name'])}?attempt={row['attempt']}"
        items.append({**row, "created_at": iso(row["created_at"]), "url": path})
    return JSON({"items": items})


@router.get("/{ref}/outputs/{name:path}", summary="Download an output (Range supported)")
def download(
    ref: str, name: str, request: Request, who: Principal = Depends(principal),
    attempt: int | None = Query(None, ge=1, le=MAX_ROW_ID),
) -> FileResponse:
    svc = services(request)
    path = svc.files.output_path(svc.jobs.get(who, job_ref(ref)), name, attempt)
    return FileResponse(path, filename=path.name)
