"""TensorPool's storage volumes (``tp storage ...``, and ``tp cluster attach/detach``) over
Jobyard's volumes: directories on this server with a size quota, seen by jobs on the
clusters they are attached to.

Create, destroy, edit, attach and detach answer **202** with what ``--wait`` polls
(``request_id``; ``request_ids``, a list, for attach); list and info answer 200 with a table
in ``message``, printed verbatim by the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from jobyard import ids
from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.tensorpool.shapes import (
    TensorPoolRoute,
    accepted,
    when,
    yes_no,
)
from jobyard.api.dialects.tensorpool.tables import key_value_table, tsv_table
from jobyard.api.responses import JSON
from jobyard.core.inputs import AttachVolume, CreateVolume, EditVolume
from jobyard.core.models import Principal
from jobyard.core.times import iso
from jobyard.core.volumes import GB, Volume, env_name
from jobyard.errors import BadRequest, DeletionProtected

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)
Id = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class StorageCreateIn(BaseModel):
    """What ``tp storage create`` sends."""

    size: int = Field(description="GB (10^9 bytes)")
    deletion_protection: bool = False
    name: str | None = Field(None, max_length=100)


class StorageEditIn(BaseModel):
    """What ``tp storage edit`` sends."""

    tp_storage_name: str | None = Field(None, max_length=100)
    deletion_protection: bool | None = None
    size_gb: int | None = Field(None, description="a larger size; volumes never shrink")


class AttachIn(BaseModel):
    """What ``tp cluster attach`` sends."""

    storage_id: str = Field(max_length=40)
    cluster_ids: list[str] = Field(min_length=1, max_length=50)


class DetachIn(BaseModel):
    """What ``tp cluster detach`` sends."""

    storage_id: str = Field(max_length=40)
    cluster_id: str = Field(max_length=40)


def _gb(n: int | None) -> str | None:
    return None if n is None else f"{n / GB:.2f}"


def storage_info(v: Volume) -> dict[str, Any]:
    """A volume as an object (``storage_info`` of ``GET /storage/info/{id}``)."""
    return {
        "storage_id": v.uid, "name": v.name, "status": str(v.state), "size_gb": v.size_gb,
        "used_bytes": v.used_bytes, "over_quota": v.over_quota,
        "used_checked_at": iso(v.used_checked_at), "cluster_ids": list(v.attachments),
        "deletion_protection": v.deletion_protection,
        "created_at": iso(v.created_at), "updated_at": iso(v.updated_at),
    }


def _info_table(v: Volume) -> str:
    used = _gb(v.used_bytes)
    if used is not None:
        used += f" (measured {when(v.used_checked_at)})"
        if v.over_quota:
            used += ", OVER QUOTA"
    return key_value_table([
        ("Storage ID", v.uid), ("Name", v.name), ("Status", str(v.state)),
        ("Size (GB)", v.size_gb), ("Used (GB)", used),
        ("Attached to", ", ".join(v.attachments)),
        ("Deletion protection", yes_no(v.deletion_protection)),
        ("Created", when(v.created_at)), ("Updated", when(v.updated_at)),
    ])


def list_message(vols: list[Volume]) -> str:
    if not vols:
        return "No storage volumes. Create one with `tp storage create <size_gb> --name <name>`."
    return tsv_table(
        ("STORAGE ID", "NAME", "SIZE (GB)", "USED (GB)", "STATUS", "ATTACHED TO",
         "DELETION PROTECTION", "CREATED"),
        [(v.uid, v.name, v.size_gb, _gb(v.used_bytes), str(v.state), ", ".join(v.attachments),
          yes_no(v.deletion_protection), when(v.created_at)) for v in vols])


@router.post("/storage/create", status_code=202, summary="Create a storage volume (TensorPool)")
def create(body: StorageCreateIn, request: Request,
           who: Principal = Depends(principal)) -> JSON:
    name = body.name or f"volume-{ids.random_token(6)}"
    new = CreateVolume(name, body.size, body.deletion_protection)
    req, v = services(request).volumes.create(who, new)
    return accepted(f"Storage volume {v.uid} ('{v.name}', {v.size_gb} GB) creation initiated. "
                    f"See `tp storage info {v.uid}`.", request_id=req.uid, storage_id=v.uid)


@router.delete("/storage/{storage_id}", status_code=202,
               summary="Destroy a storage volume (TensorPool)")
def destroy(request: Request, storage_id: Id, who: Principal = Depends(principal)) -> JSON:
    try:
        req, v = services(request).volumes.destroy(who, storage_id)
    except DeletionProtected as exc:
        raise BadRequest(f"{exc.message}: tp storage edit {storage_id} "
                         "--deletion-protection false", exc.details) from exc
    return accepted(f"Storage volume {v.uid} destruction initiated: its files are deleted.",
                    request_id=req.uid, storage_id=v.uid)


@router.get("/storage/list", summary="List storage volumes (TensorPool)")
async def list_volumes(request: Request, include_org: bool = Query(False),
                       who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    vols = await read(svc, svc.volumes.list_volumes, who, not include_org)
    return JSON({"message": list_message(vols), "storage": [storage_info(v) for v in vols]})


@router.get("/storage/info/{storage_id}", summary="Get a storage volume (TensorPool)")
async def info(request: Request, storage_id: Id, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    v = await read(svc, svc.volumes.get_volume, who, storage_id)
    return JSON({"message": _info_table(v), "storage_info": storage_info(v)})


@router.patch("/storage/edit/{storage_id}", status_code=202,
              summary="Edit a storage volume (TensorPool)")
def edit(body: StorageEditIn, request: Request, storage_id: Id,
         who: Principal = Depends(principal)) -> JSON:
    if body.tp_storage_name is None and body.size_gb is None and body.deletion_protection is None:
        raise BadRequest("nothing to edit: give tp_storage_name, size_gb and/or "
                         "deletion_protection")
    change = EditVolume(body.tp_storage_name, body.size_gb, body.deletion_protection)
    req, v = services(request).volumes.edit(who, storage_id, change)
    lines = []
    if req is not None:
        changes = []
        if body.tp_storage_name is not None:
            changes.append(f"renaming to '{body.tp_storage_name}'")
        if body.size_gb is not None:
            changes.append(f"resizing to {body.size_gb} GB")
        lines.append(f"Storage volume {v.uid}: {' and '.join(changes)} (request {req.uid})")
    if body.deletion_protection is not None:
        state = "enabled" if body.deletion_protection else "disabled"
        lines.append(f"Deletion protection {state} for storage volume {v.uid}")
    extra = {"request_id": req.uid} if req is not None else {}
    return accepted("\n".join(lines), storage_id=v.uid, **extra)


@router.post("/storage/attach", status_code=202,
             summary="Attach a storage volume to a cluster (TensorPool)")
def attach(body: AttachIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    if len(body.cluster_ids) != 1:
        raise BadRequest("attach a volume to one cluster at a time (a volume has one request "
                         "in progress at a time)")
    [cluster_id] = body.cluster_ids
    req, v = services(request).clusters.attach(who, AttachVolume(body.storage_id, cluster_id))
    return accepted(f"Attaching storage volume {v.uid} to cluster {cluster_id}: jobs on it "
                    f"see the volume at ${env_name(v.name)} (and mnt/{v.name}).",
                    request_ids=[req.uid], storage_id=v.uid)


@router.post("/storage/detach", status_code=202,
             summary="Detach a storage volume from a cluster (TensorPool)")
def detach(body: DetachIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    change = AttachVolume(body.storage_id, body.cluster_id, detach=True)
    req, v = services(request).clusters.attach(who, change)
    return accepted(f"Detaching storage volume {v.uid} from cluster {body.cluster_id}",
                    request_id=req.uid, storage_id=v.uid)
