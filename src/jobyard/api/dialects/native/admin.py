"""/v1/me, /v1/orgs, /v1/users, /v1/keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from jobyard.api.auth import admin, principal
from jobyard.api.deps import services
from jobyard.api.dialects.native.schemas import KeyIn, OrgIn, UserIn
from jobyard.api.responses import JSON
from jobyard.api.validation import MAX_ROW_ID, StrictRoute
from jobyard.core.inputs import CreateKey, CreateUser
from jobyard.core.models import Principal
from jobyard.core.times import iso

router = APIRouter(prefix="/v1", tags=["accounts"], route_class=StrictRoute)


def _times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if k.endswith("_at") else v for k, v in row.items()}


@router.get("/me")
def me(who: Principal = Depends(principal)) -> JSON:
    return JSON({"user_id": who.user_id, "username": who.username, "org_id": who.org_id,
                 "is_admin": who.is_admin})


@router.post("/orgs", status_code=201)
def create_org(body: OrgIn, request: Request, who: Principal = Depends(admin)) -> JSON:
    return JSON(_times(services(request).accounts.create_org(who, body.name)), status_code=201)


@router.get("/orgs")
def list_orgs(request: Request, who: Principal = Depends(admin)) -> JSON:
    return JSON({"items": [_times(o) for o in services(request).accounts.list_orgs(who)]})


@router.post("/users", status_code=201)
def create_user(body: UserIn, request: Request, who: Principal = Depends(admin)) -> JSON:
    user = services(request).accounts.create_user(who, CreateUser(body.username, body.org,
                                                                  body.is_admin))
    return JSON(_times(user), status_code=201)


@router.get("/users")
def list_users(request: Request, who: Principal = Depends(admin)) -> JSON:
    return JSON({"items": [_times(u) for u in services(request).accounts.list_users(who)]})


@router.post("/keys", status_code=201, summary="Create an API key (shown once)")
def create_key(body: KeyIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    row = services(request).accounts.create_key(who, CreateKey(body.name, body.username))
    return JSON(_times(row), status_code=201)


@router.get("/keys")
def list_keys(request: Request, username: str | None = None,
              who: Principal = Depends(principal)) -> JSON:
    return JSON({"items": [_times(k) for k in services(request).accounts.list_keys(who, username)]})


@router.delete("/keys/{key_id}", summary="Revoke an API key")
def revoke_key(request: Request, key_id: int = Path(ge=1, le=MAX_ROW_ID),
               who: Principal = Depends(principal)) -> JSON:
    return JSON(_times(services(request).accounts.revoke_key(who, key_id)))
