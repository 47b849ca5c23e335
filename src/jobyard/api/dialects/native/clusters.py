"""/v1/clusters (reservations of the inventory), volume attach/detach, and org GPU quotas.

Mutations answer 202 with the request to poll (``GET /v1/requests/{id}``), like storage.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import admin, principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.native.storage import accepted, render_request
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute
from jobyard.core.clusters import Cluster, numbered
from jobyard.core.inputs import AttachVolume, ClaimCluster, EditCluster, SetQuota
from jobyard.core.models import Principal
from jobyard.core.operations import Operation
from jobyard.core.times import iso

router = APIRouter(prefix="/v1", tags=["clusters"], route_class=StrictRoute)


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instance_type: str = Field(max_length=50, description="a name from the catalog")
    instance_count: int = Field(1, description="how many instances")
    name: str | None = Field(None, max_length=100)
    deletion_protection: bool = Field(False, description="refuse releasing it while on")


class ClusterEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100)
    instance_count: int | None = Field(None, description="grow (if free) or shrink")
    deletion_protection: bool | None = Field(
        None, description="on/off at once; alone, it answers 200 with the cluster")


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cluster_id: str = Field(max_length=40)


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_gpus: int | None = Field(None, ge=0, le=MAX_ROW_ID, description="null: the server default")


def render_cluster(c: Cluster) -> dict[str, Any]:
    return {
        "id": c.uid, "name": c.name, "state": str(c.state), "instance_type": c.instance_type,
        "instance_count": c.count, "gpus": c.count * c.gpus_per_instance,
        # ``index``: the instance's stable number (what a job's ``cluster.instance`` names).
        "instances": [{"index": inst.pop("n"), **inst} for inst in numbered(c.instances)],
        "attachments": list(c.attachments), "message": c.message,
        "deletion_protection": c.deletion_protection,
        "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
    }


def cluster_accepted(r: Operation, c: Cluster) -> JSON:
    body = {"request_id": r.uid, "cluster_id": c.uid, "message": r.external_message,
            "request": render_request(r)}
    return JSON(body, status_code=202, headers={"Location": f"/v1/requests/{r.uid}"})


@router.get("/instance-types", summary="The instance type catalog")
def instance_types(request: Request, _: Principal = Depends(principal)) -> JSON:
    items = [{"name": t.name, "gpus": t.gpus, "cpus": t.cpus, "memory_mb": t.memory_mb,
              "price_hour": t.price_hour} for t in services(request).clusters.catalog.values()]
    return JSON({"items": items})


@router.post("/clusters", status_code=202, summary="Claim a cluster (async)")
def claim(body: ClusterIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    new = ClaimCluster(body.instance_type, body.instance_count, body.name,
                       body.deletion_protection)
    return cluster_accepted(*services(request).clusters.claim(who, new))


@router.get("/clusters", summary="Your org's clusters")
async def list_clusters(request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    clusters = await read(svc, svc.clusters.list, who)
    return JSON({"items": [render_cluster(c) for c in clusters]})


@router.get("/clusters/{uid}", summary="Get a cluster")
async def get_cluster(uid: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return JSON(render_cluster(await read(svc, svc.clusters.get, who, uid)))


@router.patch("/clusters/{uid}", status_code=202,
              summary="Rename or resize a cluster (async), or set its deletion protection")
def edit(uid: str, body: ClusterEditIn, request: Request,
         who: Principal = Depends(principal)) -> JSON:
    change = EditCluster(body.name, body.instance_count, body.deletion_protection)
    req, cluster = services(request).clusters.edit(who, uid, change)
    return JSON(render_cluster(cluster)) if req is None else cluster_accepted(req, cluster)


@router.delete("/clusters/{uid}", status_code=202,
               summary="Release a cluster (async); 409 while deletion-protected")
def release(uid: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    return cluster_accepted(*services(request).clusters.release(who, uid))


@router.post("/storage/{uid}/attach", status_code=202, summary="Attach to a cluster (async)")
def attach(uid: str, body: AttachIn, request: Request,
           who: Principal = Depends(principal)) -> JSON:
    return accepted(*services(request).clusters.attach(who, AttachVolume(uid, body.cluster_id)))


@router.post("/storage/{uid}/detach", status_code=202, summary="Detach from a cluster (async)")
def detach(uid: str, body: AttachIn, request: Request,
           who: Principal = Depends(principal)) -> JSON:
    change = AttachVolume(uid, body.cluster_id, detach=True)
    return accepted(*services(request).clusters.attach(who, change))


@router.put("/orgs/{name}/quota", summary="Set an org's GPU quota for clusters (admin)")
def put_quota(name: str, body: QuotaIn, request: Request, who: Principal = Depends(admin)) -> JSON:
    return JSON(services(request).accounts.set_quota(who, SetQuota(name, body.max_gpus)))


@router.get("/orgs/{name}/quota", summary="An org's GPU quota and what its clusters hold")
def get_quota(name: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    return JSON(services(request).accounts.quota(who, name))
