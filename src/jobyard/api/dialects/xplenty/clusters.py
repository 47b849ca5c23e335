"""Integrate.io's clusters over Jobyard's (reservations of the inventory, ``core/clusters.py``).

``type`` names the instance type of the cluster's nodes: a name from the catalog
(``GET /v1/instance-types``), or Integrate.io's ``sandbox``/``production``, which take the
catalog's first type (``cpu-1`` by default); a sandbox has one node. ``nodes`` is the number
of instances. A create answers 201 with the cluster ``pending`` (then ``creating`` while its
claim runs, ``available`` once its instances are reserved, ``error`` if it cannot be served);
a terminate answers 200 with the cluster ``pending_terminate`` (then ``terminating``,
``terminated``); it stops the cluster's jobs. ``terminate_on_idle``/``time_to_idle`` are
honoured by the leading daemon (``daemon/schedules.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from jobyard.api.dialects.xplenty import params
from jobyard.api.dialects.xplenty.auth import Caller, charged
from jobyard.api.dialects.xplenty.shapes import (
    CLUSTER_STATUS,
    XJSON,
    XplentyRoute,
    cluster_view,
    collection,
)
from jobyard.core.clusters import MAX_INSTANCES, Cluster, ClusterState
from jobyard.core.inputs import ClaimCluster
from jobyard.core.packages import CLUSTER_META
from jobyard.errors import Conflict, DeletionProtected, ValidationFailed

router = APIRouter(prefix="/{account_id}/api", tags=["integrate.io"], route_class=XplentyRoute)
ClusterId = Path(ge=1, le=2**31 - 1, description="the cluster's integer id")
KINDS = ("sandbox", "production")
MAX_TIME_TO_IDLE = 30 * 86400


def render(c: Caller, clusters: list[Cluster], requested: bool = False
           ) -> list[dict[str, Any]]:
    """``requested``: answering the request that was just recorded, so it is still waiting
    (``pending``, ``pending_terminate``) whatever the processor did meanwhile."""
    facts = c.svc.clusters.facts(clusters)
    if requested:
        facts = {x.uid: {**facts[x.uid], "open": "PENDING"} | (
            {"claimed_at": None} if x.state is ClusterState.PENDING else {})
            for x in clusters}
    notes = c.svc.clusters.notes(clusters, CLUSTER_META)
    users = c.svc.accounts.usernames(x.user_id for x in clusters)
    return [cluster_view(x, facts[x.uid], notes.get(x.id) or {}, users, c.origin, c.base)
            for x in clusters]


def visible(c: Caller, cluster_id: int) -> Cluster:
    return c.svc.clusters.by_number(c.who, cluster_id)


def instance_type_for(c: Caller, kind: str) -> str:
    catalog = c.svc.clusters.catalog
    if kind in catalog:
        return kind
    if kind in (*KINDS, "") and catalog:
        return next(iter(catalog))
    raise ValidationFailed(
        f"invalid request: type: '{kind}' is neither {' nor '.join(KINDS)} nor an instance "
        f"type of this server ({', '.join(catalog)})", {"loc": ["body", "type"],
                                                         "type": "value_error"})


def states_named(word: str) -> list[str] | None:
    if word == "all":
        return None
    found = [str(s) for s, words in CLUSTER_STATUS.items() if word in words]
    if not found:
        raise ValidationFailed(f"invalid request: status: unknown status '{word}'",
                               {"loc": ["query", "status"], "type": "value_error"})
    return found


@router.post("/clusters", status_code=201, summary="Create a cluster (Integrate.io)")
async def create(request: Request, c: Caller = Depends(charged)) -> XJSON:
    data = await params.body(request, "cluster")
    kind = params.text(data, "type", 50) or "production"
    instance_type = instance_type_for(c, kind)
    # A sandbox has one node; any other cluster says how many (an empty body makes none).
    nodes = params.integer(data, "nodes", 1, required=kind != "sandbox")
    if nodes is None or not 1 <= nodes <= MAX_INSTANCES:
        raise params.invalid("nodes", f"must be from 1 to {MAX_INSTANCES}")
    time_to_idle = params.integer(data, "time_to_idle", 3600)
    if time_to_idle is None or not 0 <= time_to_idle <= MAX_TIME_TO_IDLE:
        raise params.invalid("time_to_idle", f"must be from 0 to {MAX_TIME_TO_IDLE} seconds")
    meta = {"type": kind, "description": params.text(data, "description"),
            "terminate_on_idle": params.flag(data, "terminate_on_idle"),
            "time_to_idle": time_to_idle}
    name = params.text(data, "name", 100).strip() or None

    def claim() -> dict[str, Any]:
        count = 1 if kind == "sandbox" else nodes
        new = ClaimCluster(instance_type, count, name)
        _, cluster = c.svc.clusters.claim(c.who, new)
        c.svc.clusters.note(cluster, CLUSTER_META, meta)
        return render(c, [cluster], requested=True)[0]

    return XJSON(await asyncio.to_thread(claim), status_code=201)


@router.get("/clusters", summary="List clusters, newest first (Integrate.io)")
def list_clusters(request: Request, c: Caller = Depends(charged)) -> XJSON:
    offset, limit = params.page(request)
    states = states_named(request.query_params.get("status") or "all")
    clusters, total = c.svc.clusters.page(c.who, offset, limit, states)
    return collection(render(c, clusters), request.url, offset, limit, total)


@router.get("/clusters/{cluster_id}", summary="Get a cluster (Integrate.io)")
def get_cluster(cluster_id: int = ClusterId, c: Caller = Depends(charged)) -> XJSON:
    return XJSON(render(c, [visible(c, cluster_id)])[0])


@router.delete("/clusters/{cluster_id}", summary="Terminate a cluster (Integrate.io)")
def terminate(cluster_id: int = ClusterId, c: Caller = Depends(charged)) -> XJSON:
    cluster = visible(c, cluster_id)
    if cluster.state in (ClusterState.RELEASING, ClusterState.RELEASED):  # a repeat
        return XJSON(render(c, [cluster])[0])
    try:
        c.svc.clusters.release(c.who, cluster.uid)
    except DeletionProtected:
        raise
    except Conflict as exc:  # the core names the cluster by its string id
        status = render(c, [visible(c, cluster_id)])[0]["status"]
        raise Conflict(f"cluster {cluster_id} is {status}; it cannot be terminated now",
                       exc.details) from exc
    cluster.state = ClusterState.RELEASING  # as recorded with the request
    return XJSON(render(c, [cluster], requested=True)[0])
