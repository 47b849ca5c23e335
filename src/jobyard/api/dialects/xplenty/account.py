"""Integrate.io's packages and schedules (read-only here: they are defined through Jobyard's
own API or CLI, ``/v1/packages``, ``/v1/schedules``), the rate limit status, and a JSON 404
for every other path under ``/{account_id}/api/``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from jobyard.api.dialects.xplenty import params
from jobyard.api.dialects.xplenty.auth import Caller, charged, free
from jobyard.api.dialects.xplenty.shapes import (
    XJSON,
    XplentyRoute,
    collection,
    package_view,
    schedule_view,
)
from jobyard.errors import NotFound

router = APIRouter(prefix="/{account_id}/api", tags=["integrate.io"], route_class=XplentyRoute)
PackageId = Path(ge=1, le=2**31 - 1)
ScheduleId = Path(ge=1, le=2**31 - 1)  # one Path per name: FastAPI binds it to the name


@router.get("/packages", summary="List packages, newest first (Integrate.io)")
def list_packages(request: Request, c: Caller = Depends(charged)) -> XJSON:
    offset, limit = params.page(request)
    items, total = c.packages.list_packages(c.who, offset, limit)
    users = c.svc.accounts.usernames(p.user_id for p in items)
    return collection([package_view(p, users, c.origin, c.base) for p in items], request.url,
                      offset, limit, total)


@router.get("/packages/{package_id}", summary="Get a package (Integrate.io)")
def get_package(package_id: int = PackageId, c: Caller = Depends(charged)) -> XJSON:
    p = c.packages.get_package(c.who, package_id)
    return XJSON(package_view(p, c.svc.accounts.usernames([p.user_id]), c.origin, c.base))


@router.get("/schedules", summary="List schedules, newest first (Integrate.io)")
def list_schedules(request: Request, c: Caller = Depends(charged)) -> XJSON:
    offset, limit = params.page(request)
    items, total = c.packages.list_schedules(c.who, offset, limit)
    users = c.svc.accounts.usernames(s.user_id for s in items)
    return collection([schedule_view(s, users, c.origin, c.base) for s in items], request.url,
                      offset, limit, total)


@router.get("/schedules/{schedule_id}", summary="Get a schedule (Integrate.io)")
def get_schedule(schedule_id: int = ScheduleId, c: Caller = Depends(charged)) -> XJSON:
    s = c.packages.get_schedule(c.who, schedule_id)
    return XJSON(schedule_view(s, c.svc.accounts.usernames([s.user_id]), c.origin, c.base))


@router.get("/rate_limit_status", summary="API credits left this hour (Integrate.io; free)")
def rate_limit_status(c: Caller = Depends(free)) -> XJSON:
    return XJSON({"limits": {"limit": c.verdict.limit, "remaining": c.verdict.remaining}})


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  include_in_schema=False)
def not_offered(request: Request, c: Caller = Depends(free)) -> XJSON:
    raise NotFound(f"not found: {request.method} {request.url.path} is not offered by this "
                   "server")
