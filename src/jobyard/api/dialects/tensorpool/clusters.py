"""TensorPool's clusters (``tp cluster create/destroy/list/info/edit``) over Jobyard's clusters.

A cluster is a reservation of N instances of a catalog type on this server's machine
(``core/clusters.py``). Create, destroy and edit answer **202** (the CLI treats anything else
as a failure) with the ``request_id`` that ``--wait`` polls at ``/request/info/{id}``; list and
info answer 200 with a pre-formatted table in ``message``, which the CLI prints verbatim.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

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
from jobyard.core.clusters import HOLDING, Cluster, InstanceType, numbered
from jobyard.core.inputs import ClaimCluster, EditCluster
from jobyard.core.models import Principal
from jobyard.core.states import ACTIVE, JobState
from jobyard.core.times import iso
from jobyard.errors import BadRequest, DeletionProtected

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)
ClusterId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
LIVE_JOBS = [str(JobState.QUEUED), *(str(s) for s in ACTIVE)]


class ClusterCreateIn(BaseModel):
    """What ``tp cluster create`` sends."""

    instance_type: str = Field(max_length=50)
    num_nodes: int | None = Field(None, ge=1, description="instances (at least 1); null: 1")
    deletion_protection: bool = False
    public_keys: list[str] | None = Field(None, max_length=20)
    tp_cluster_name: str | None = Field(None, max_length=100)
    container: str | None = Field(None, max_length=500)


class ClusterEditIn(BaseModel):
    """What ``tp cluster edit`` sends (``cluster_name``, unlike create's ``tp_cluster_name``)."""

    cluster_name: str | None = Field(None, max_length=100)
    deletion_protection: bool | None = None


def _gpus(c: Cluster) -> int:
    return c.count * c.gpus_per_instance


def cluster_info(c: Cluster, it: InstanceType | None, jobs: int | None = None
                 ) -> dict[str, Any]:
    """A cluster as an object (``cluster_info`` of ``GET /cluster/info/{id}``); ``jobs``: how
    many queued or running jobs it has, when known."""
    return {
        "cluster_id": c.uid, "cluster_name": c.name, "status": str(c.state),
        "instance_type": c.instance_type, "num_nodes": c.count,
        "gpus_per_node": c.gpus_per_instance, "gpus": _gpus(c),
        "cpus_per_node": it.cpus if it else None,
        "memory_mb_per_node": it.memory_mb if it else None,
        "price_per_hour": it.price_hour * c.count if it else None,
        "deletion_protection": c.deletion_protection,
        "instances": [{"instance": inst["n"], "gpu_indices": inst.get("gpus", []),
                       "cpus": inst.get("cpus"), "memory_mb": inst.get("memory_mb")}
                      for inst in numbered(c.instances)],
        "storage_ids": list(c.attachments), "active_jobs": jobs, "message": c.message,
        "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
    }


def _num(x: float | None) -> str | None:
    return None if x is None else f"{x:g}"


def _info_table(c: Cluster, info: dict[str, Any]) -> str:
    instances = "; ".join(
        f"{i['instance']}: GPUs {','.join(map(str, i['gpu_indices'])) or '-'}"
        for i in info["instances"])
    pairs: list[tuple[str, Any]] = [
        ("Cluster ID", info["cluster_id"]), ("Name", info["cluster_name"]),
        ("Status", info["status"]), ("Instance type", info["instance_type"]),
        ("Nodes", info["num_nodes"]), ("GPUs", info["gpus"]),
        ("GPUs per node", info["gpus_per_node"]), ("CPUs per node", _num(info["cpus_per_node"])),
        ("Memory per node (MB)", info["memory_mb_per_node"]),
    ]
    if info["price_per_hour"]:
        pairs.append(("Price per hour", f"{info['price_per_hour']:g}"))
    pairs += [
        ("Deletion protection", yes_no(info["deletion_protection"])),
        ("Instances", instances), ("Storage", ", ".join(info["storage_ids"])),
        ("Active jobs", info["active_jobs"]), ("Message", info["message"]),
        ("Created", when(c.created_at)), ("Updated", when(c.updated_at)),
    ]
    return key_value_table(pairs)


def list_message(clusters: list[Cluster], catalog: dict[str, InstanceType],
                 instances: bool) -> str:
    """The table ``tp cluster list`` prints: one row per cluster, or per instance."""
    if not clusters:
        types = ", ".join(sorted(catalog)) or "none configured"
        return ("No clusters. Create one with `tp cluster create <instance_type>` "
                f"(instance types here: {types}).")
    if not instances:
        return tsv_table(
            ("CLUSTER ID", "NAME", "INSTANCE TYPE", "NODES", "GPUS", "STATUS", "STORAGE",
             "DELETION PROTECTION", "CREATED"),
            [(c.uid, c.name, c.instance_type, c.count, _gpus(c), str(c.state),
              ", ".join(c.attachments), yes_no(c.deletion_protection), when(c.created_at))
             for c in clusters])
    rows = []
    for c in clusters:
        each = catalog.get(c.instance_type)
        for inst in numbered(c.instances) or [{}]:
            rows.append((c.uid, inst.get("n"), c.name, c.instance_type, str(c.state),
                         ",".join(map(str, inst.get("gpus", []))),
                         _num(inst.get("cpus", each.cpus if each else None)),
                         inst.get("memory_mb", each.memory_mb if each else None)))
    return tsv_table(("CLUSTER ID", "INSTANCE", "NAME", "INSTANCE TYPE", "STATUS",
                      "GPU INDICES", "CPUS", "MEMORY (MB)"), rows)


@router.post("/cluster/create", status_code=202, summary="Create a cluster (TensorPool)")
def create(body: ClusterCreateIn, request: Request,
           who: Principal = Depends(principal)) -> JSON:
    if body.container:
        raise BadRequest("container images are not supported by this server: jobs run "
                         "directly on its machine. Create the cluster without --container.")
    count = body.num_nodes if body.num_nodes is not None else 1
    new = ClaimCluster(body.instance_type, count, body.tp_cluster_name,
                       body.deletion_protection)
    req, c = services(request).clusters.claim(who, new)
    message = (f"Cluster {c.uid} creation initiated ({c.count} x {c.instance_type}, "
               f"{_gpus(c)} GPUs). See `tp cluster info {c.uid}`.")
    if body.public_keys:
        message += "\nNote: this server offers no SSH access; the public key was not installed."
    return accepted(message, request_id=req.uid, cluster_id=c.uid)


@router.delete("/cluster/{cluster_id}", status_code=202, summary="Destroy a cluster (TensorPool)")
def destroy(request: Request, cluster_id: ClusterId,
            who: Principal = Depends(principal)) -> JSON:
    try:
        req, c = services(request).clusters.release(who, cluster_id)
    except DeletionProtected as exc:
        raise BadRequest(f"{exc.message}: tp cluster edit {cluster_id} "
                         "--deletion-protection false", exc.details) from exc
    return accepted(f"Cluster {c.uid} destruction initiated: its jobs are canceled, then its "
                    "resources are released.", request_id=req.uid, cluster_id=c.uid)


@router.get("/cluster/list", summary="List clusters (TensorPool)")
async def list_clusters(request: Request, include_org: bool = Query(False),
                        instances: bool = Query(False),
                        who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    clusters = [c for c in await read(svc, svc.clusters.list, who, not include_org)
                if c.state in HOLDING]
    return JSON({"message": list_message(clusters, svc.clusters.catalog, instances),
                 "clusters": [cluster_info(c, svc.clusters.catalog.get(c.instance_type))
                              for c in clusters]})


@router.get("/cluster/info/{cluster_id}", summary="Get a cluster (TensorPool)")
async def info(request: Request, cluster_id: ClusterId,
               who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    c = await read(svc, svc.clusters.get, who, cluster_id)
    jobs = await read(svc, svc.jobs.on_cluster, c.uid, LIVE_JOBS)
    data = cluster_info(c, svc.clusters.catalog.get(c.instance_type), len(jobs))
    return JSON({"message": _info_table(c, data), "cluster_info": data})


@router.patch("/cluster/edit/{cluster_id}", status_code=202, summary="Edit a cluster (TensorPool)")
def edit(body: ClusterEditIn, request: Request, cluster_id: ClusterId,
         who: Principal = Depends(principal)) -> JSON:
    if body.cluster_name is None and body.deletion_protection is None:
        raise BadRequest("nothing to edit: give cluster_name and/or deletion_protection")
    change = EditCluster(body.cluster_name, None, body.deletion_protection)
    req, c = services(request).clusters.edit(who, cluster_id, change)
    lines = []
    if body.cluster_name is not None and req is not None:
        lines.append(f"Renaming cluster {c.uid} to '{body.cluster_name}' (request {req.uid})")
    if body.deletion_protection is not None:
        state = "enabled" if body.deletion_protection else "disabled"
        lines.append(f"Deletion protection {state} for cluster {c.uid}")
    ids = {"request_id": req.uid} if req is not None else {}
    return accepted("\n".join(lines), cluster_id=c.uid, **ids)
