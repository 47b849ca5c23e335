"""/v1/packages and /v1/schedules: Integrate.io's packages (a named command with default
variables) and schedules (run a package every N minutes/hours/days/weeks/months), defined here
and run through the Integrate.io API (``POST /{account_id}/api/jobs``) or by their schedules.

A package or schedule is addressed by its integer id (a package also by its name). Another
org's is 404. See ``core/packages.py`` for the variables rule and schedule times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.native.schemas import ResourcesIn
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute, row_ref
from jobyard.core.inputs import CreatePackage, CreateSchedule
from jobyard.core.models import Principal
from jobyard.core.packages import Package, Schedule
from jobyard.core.times import iso

router = APIRouter(prefix="/v1", tags=["packages"], route_class=StrictRoute)
Value = str | int | float | bool
ScheduleId = Path(ge=1, le=MAX_ROW_ID)


class PackageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="unique in your org")
    command: str | list[str] = Field(description="a shell command, or an argv list")
    variables: dict[str, Value] = Field({}, description="defaults; each run's env (see docs)")
    resources: ResourcesIn = ResourcesIn()
    description: str | None = Field(None, max_length=2000)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    package: int | str = Field(description="the package's id or name")
    interval_amount: int = Field(ge=1, le=10000)
    interval_unit: str = Field(description="minutes, hours, days, weeks or months")
    start_at: datetime | None = Field(None, description="first run (default: now)")
    variables: dict[str, Value] = Field({}, description="override the package's defaults")
    description: str | None = Field(None, max_length=2000)
    enabled: bool = True



def package_ref(ref: str) -> int | str:
    return row_ref(ref, "package")


def render_package(p: Package) -> dict[str, Any]:
    return {
        "id": p.id, "name": p.name, "description": p.description, "command": p.command,
        "variables": p.variables,
        "resources": {"gpus": p.resources.gpus, "cpus": p.resources.cpus,
                      "memory_mb": p.resources.memory_mb},
        "owner": {"user_id": p.user_id, "org_id": p.org_id},
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
    }


def render_schedule(s: Schedule) -> dict[str, Any]:
    return {
        "id": s.id, "name": s.name, "description": s.description,
        "package": {"id": s.package_id, "name": s.package_name},
        "variables": s.variables, "status": s.status,
        "interval_amount": s.interval_amount, "interval_unit": s.interval_unit,
        "start_at": iso(s.start_at), "next_run_at": iso(s.next_run_at),
        "last_run_at": iso(s.last_run_at), "last_run_state": s.last_run_status,
        "last_job_number": s.last_job_id, "execution_count": s.execution_count,
        "owner": {"user_id": s.user_id, "org_id": s.org_id},
        "created_at": iso(s.created_at), "updated_at": iso(s.updated_at),
    }


def _page(items: list[Any], total: int, render: Any) -> JSON:
    return JSON({"items": [render(x) for x in items], "total": total})


# packages ----------------------------------------------------------------------------------
@router.post("/packages", status_code=201, summary="Create a package (Integrate.io)")
def create_package(body: PackageIn, request: Request,
                   who: Principal = Depends(principal)) -> JSON:
    p = services(request).packages.create_package(who, CreatePackage(
        body.name, body.command, body.variables, body.resources.model_dump(), body.description))
    return JSON(render_package(p), status_code=201, headers={"Location": f"/v1/packages/{p.id}"})


@router.get("/packages", summary="Your org's packages, newest first")
async def list_packages(request: Request, who: Principal = Depends(principal),
                        offset: int = Query(0, ge=0, le=MAX_ROW_ID),
                        limit: int = Query(100, ge=1, le=100)) -> JSON:
    svc = services(request)
    items, total = await read(svc, svc.packages.list_packages, who, offset, limit)
    return _page(items, total, render_package)


@router.get("/packages/{ref}", summary="Get a package (by id or name)")
async def get_package(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return JSON(render_package(await read(svc, svc.packages.get_package, who, package_ref(ref))))


@router.delete("/packages/{ref}", summary="Delete a package (409 while a schedule runs it)")
def delete_package(ref: str, request: Request, who: Principal = Depends(principal)) -> JSON:
    p = services(request).packages.delete_package(who, package_ref(ref))
    return JSON({"id": p.id, "deleted": True})


# schedules ---------------------------------------------------------------------------------
@router.post("/schedules", status_code=201, summary="Create a schedule (Integrate.io)")
def create_schedule(body: ScheduleIn, request: Request,
                    who: Principal = Depends(principal)) -> JSON:
    s = services(request).packages.create_schedule(who, CreateSchedule(
        body.name, package_ref(str(body.package)), body.interval_amount, body.interval_unit,
        body.start_at.timestamp() if body.start_at else None, body.variables,
        body.description, body.enabled))
    return JSON(render_schedule(s), status_code=201,
                headers={"Location": f"/v1/schedules/{s.id}"})


@router.get("/schedules", summary="Your org's schedules, newest first")
async def list_schedules(request: Request, who: Principal = Depends(principal),
                         offset: int = Query(0, ge=0, le=MAX_ROW_ID),
                         limit: int = Query(100, ge=1, le=100)) -> JSON:
    svc = services(request)
    items, total = await read(svc, svc.packages.list_schedules, who, offset, limit)
    return _page(items, total, render_schedule)


@router.get("/schedules/{schedule_id}", summary="Get a schedule")
async def get_schedule(request: Request, schedule_id: int = ScheduleId,
                       who: Principal = Depends(principal)) -> JSON:
    svc = services(request)
    return JSON(render_schedule(await read(svc, svc.packages.get_schedule, who, schedule_id)))


@router.delete("/schedules/{schedule_id}", summary="Delete a schedule (its jobs stay)")
def delete_schedule(request: Request, schedule_id: int = ScheduleId,
                    who: Principal = Depends(principal)) -> JSON:
    s = services(request).packages.delete_schedule(who, schedule_id)
    return JSON({"id": s.id, "deleted": True})


@router.post("/schedules/{schedule_id}/enable", summary="Enable (next run planned from now)")
def enable(request: Request, schedule_id: int = ScheduleId,
           who: Principal = Depends(principal)) -> JSON:
    return JSON(render_schedule(services(request).packages.set_enabled(who, schedule_id, True)))


@router.post("/schedules/{schedule_id}/disable", summary="Disable (no runs until enabled)")
def disable(request: Request, schedule_id: int = ScheduleId,
            who: Principal = Depends(principal)) -> JSON:
    return JSON(render_schedule(services(request).packages.set_enabled(who, schedule_id, False)))
