"""/v1/endpoints: named job templates (TensorOne's ``ep_<name>``) that jobs run against.

Runs go through the TensorOne dialect (``POST /v2/endpoints/{id}/run`` and ``runsync``); here
they are created, listed, read and deleted. Another org's endpoint is 404, like a job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.native.schemas import ResourcesIn
from jobyard.api.responses import JSON
from jobyard.api.validation import StrictRoute
from jobyard.core.endpoints import Endpoint
from jobyard.core.inputs import NewEndpoint
from jobyard.core.models import Principal, Resources
from jobyard.core.times import iso

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"], route_class=StrictRoute)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100,
                      description="letters, digits, '_', '-'; the id is 'ep_' + name")
    command: str | list[str] = Field(description="a shell command, or an argv list")
    env: dict[str, str] = {}
    resources: ResourcesIn = ResourcesIn()
    time_limit_s: float | None = Field(None, gt=0, description="a run may set its own")

    def to_input(self) -> NewEndpoint:
        return NewEndpoint(name=self.name, command=self.command, env=self.env,
                           resources=Resources(**self.resources.model_dump()),
                           time_limit_s=self.time_limit_s)



def render_endpoint(ep: Endpoint) -> dict[str, Any]:
    return {
        "id": ep.uid, "name": ep.name, "command": ep.command, "env": ep.env,
        "resources": {"gpus": ep.resources.gpus, "cpus": ep.resources.cpus,
                      "memory_mb": ep.resources.memory_mb},
        "time_limit_s": ep.time_limit_s,
        "owner": {"user_id": ep.user_id, "org_id": ep.org_id},
        "run_url": f"/v2/endpoints/{ep.uid}/run",
        "created_at": iso(ep.created_at), "updated_at": iso(ep.updated_at),
    }


@router.post("", status_code=201, summary="Create an endpoint (a named job template)")
def create(body: EndpointIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    ep = services(request).endpoints.create(who, body.to_input())
    return JSON(render_endpoint(ep), status_code=201,
                headers={"Location": f"/v1/endpoints/{ep.uid}"})


@router.get("", summary="List your org's endpoints")
async def list_endpoints(request: Request, who: Principal = Depends(principal),
                         limit: int = Query(500, ge=1, le=500)) -> JSON:
    svc = services(request)
    items = await read(svc, svc.endpoints.list, who, limit)
    return JSON({"items": [render_endpoint(ep) for ep in items]})


@router.get("/{endpoint_id}", summary="Get an endpoint")
async def get(endpoint_id: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return JSON(render_endpoint(await read(svc, svc.endpoints.get, who, endpoint_id)))


@router.delete("/{endpoint_id}", summary="Delete an endpoint (jobs run of it stay)")
def delete(endpoint_id: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    ep = services(request).endpoints.delete(who, endpoint_id)
    return JSON({"id": ep.uid, "deleted": True})
