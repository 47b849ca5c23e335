"""/v1/storage (volumes) and /v1/requests (the async requests that change them).

Mutations answer 202 with the request to poll; ``GET /v1/requests/{id}`` carries
``Retry-After`` (whole seconds) until the request is COMPLETED or FAILED.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.responses import JSON
from jobyard.api.validation import StrictRoute
from jobyard.core.inputs import CreateVolume, EditVolume
from jobyard.core.models import Principal
from jobyard.core.operations import Operation
from jobyard.core.services import Services
from jobyard.core.times import iso
from jobyard.core.volumes import Volume

router = APIRouter(prefix="/v1", tags=["storage"], route_class=StrictRoute)


class VolumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100, description="unique in your org")
    size_gb: int = Field(description="decimal gigabytes (10^9 bytes)")
    deletion_protection: bool = Field(False, description="refuse destroying it while on")


class VolumeEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100, description="a new name")
    size_gb: int | None = Field(None, description="a larger size; volumes never shrink")
    deletion_protection: bool | None = Field(
        None, description="on/off at once; alone, it answers 200 with the volume")


def render_volume(v: Volume) -> dict[str, Any]:
    return {
        "id": v.uid, "name": v.name, "state": str(v.state), "size_gb": v.size_gb,
        "size_bytes": v.size_bytes, "used_bytes": v.used_bytes, "over_quota": v.over_quota,
        "used_checked_at": iso(v.used_checked_at), "attachments": list(v.attachments),
        "deletion_protection": v.deletion_protection,
        "created_at": iso(v.created_at), "updated_at": iso(v.updated_at),
    }


def render_request(r: Operation) -> dict[str, Any]:
    return {
        "id": r.uid, "type": str(r.type), "status": str(r.status), "object_id": r.object_id,
        "external_message": r.external_message, "attempts": r.attempts,
        "created_at": iso(r.created_at), "updated_at": iso(r.updated_at),
        "next_attempt_at": None if r.terminal else iso(r.next_attempt_at),
        "finished_at": iso(r.finished_at),
    }


def request_response(svc: Services, r: Operation) -> JSON:
    after = svc.operations.retry_after(r)
    headers = {"Retry-After": str(after)} if after is not None else None
    return JSON(render_request(r), headers=headers)


def accepted(r: Operation, v: Volume) -> JSON:
    body = {"request_id": r.uid, "storage_id": v.uid, "message": r.external_message,
            "request": render_request(r)}
    return JSON(body, status_code=202, headers={"Location": f"/v1/requests/{r.uid}"})


@router.post("/storage", status_code=202, summary="Create a storage volume (async)")
def create(body: VolumeIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    new = CreateVolume(body.name, body.size_gb, body.deletion_protection)
    return accepted(*services(request).volumes.create(who, new))


@router.get("/storage", summary="Your org's storage volumes")
async def list_volumes(request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    vols = await read(svc, svc.volumes.list_volumes, who)
    return JSON({"items": [render_volume(v) for v in vols]})


@router.get("/storage/{uid}", summary="Get a storage volume")
async def get_volume(uid: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return JSON(render_volume(await read(svc, svc.volumes.get_volume, who, uid)))


@router.patch("/storage/{uid}", status_code=202,
              summary="Rename or grow a volume (async), or set its deletion protection")
def edit(uid: str, body: VolumeEditIn, request: Request,
         who: Principal = Depends(principal)) -> JSON:
    change = EditVolume(body.name, body.size_gb, body.deletion_protection)
    req, vol = services(request).volumes.edit(who, uid, change)
    return JSON(render_volume(vol)) if req is None else accepted(req, vol)


@router.delete("/storage/{uid}", status_code=202,
               summary="Destroy a volume (async); 409 while attached or deletion-protected")
def destroy(uid: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    return accepted(*services(request).volumes.destroy(who, uid))


@router.get("/requests", summary="Your org's async requests, newest first")
async def list_requests(request: Request, who: Principal = Depends(principal),
                        limit: int = Query(50, ge=1, le=500)) -> JSON:
    svc = services(request)
    reqs = await read(svc, svc.operations.list, who, limit)
    return JSON({"items": [render_request(r) for r in reqs]})


@router.get("/requests/{uid}", summary="An async request; Retry-After while not terminal")
async def get_request(uid: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return request_response(svc, await read(svc, svc.operations.get, who, uid))
