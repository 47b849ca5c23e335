"""/v1/me, /v1/orgs, /v1/users, /v1/keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from jobyard import ids
from jobyard.api.auth import admin, principal, runtime
from jobyard.api.dialects.native.render import iso
from jobyard.api.dialects.native.schemas import KeyIn, OrgIn, UserIn
from jobyard.api.responses import JSON
from jobyard.core.models import Principal
from jobyard.errors import Forbidden, NotFound, ValidationFailed

router = APIRouter(prefix="/v1", tags=["accounts"])


def _times(row: dict) -> dict:
    return {k: iso(v) if k.endswith("_at") else v for k, v in row.items()}


@router.get("/me")
def me(who: Principal = Depends(principal)) -> JSON:
    return JSON({"user_id": who.user_id, "username": who.username, "org_id": who.org_id,
                 "is_admin": who.is_admin})


@router.post("/orgs", status_code=201)
def create_org(body: OrgIn, request: Request, _: Principal = Depends(admin)) -> JSON:
    return JSON(_times(runtime(request).store.accounts.create_org(body.name)), status_code=201)


@router.get("/orgs")
def list_orgs(request: Request, _: Principal = Depends(admin)) -> JSON:
    return JSON({"items": [_times(o) for o in runtime(request).store.accounts.list_orgs()]})


@router.post("/users", status_code=201)
def create_user(body: UserIn, request: Request, _: Principal = Depends(admin)) -> JSON:
    user = runtime(request).store.accounts.create_user(body.username, body.org, body.is_admin)
    return JSON(_times(user), status_code=201)


@router.get("/users")
def list_users(request: Request, _: Principal = Depends(admin)) -> JSON:
    return JSON({"items": [_times(u) for u in runtime(request).store.accounts.list_users()]})


@router.post("/keys", status_code=201, summary="Create an API key (shown once)")
def create_key(body: KeyIn, request: Request, who: Principal = Depends(principal)) -> JSON:
    store = runtime(request).store
    user_id = who.user_id
    if body.username and body.username != who.username:
        if not who.is_admin:
            raise Forbidden("only an admin can create keys for another user")
        user = store.accounts.find_user(body.username)
        if user is None:
            raise ValidationFailed(f"user '{body.username}' does not exist",
                                   {"loc": ["body", "username"]})
        user_id = user["id"]
    secret = ids.api_key()
    row = store.accounts.create_key(user_id, ids.hash_key(secret), secret[:10], body.name)
    return JSON({**_times(row), "key": secret}, status_code=201)


@router.get("/keys")
def list_keys(request: Request, username: str | None = None,
              who: Principal = Depends(principal)) -> JSON:
    store = runtime(request).store
    user_id: int | None = who.user_id
    if who.is_admin:
        user_id = None
        if username:
            user = store.accounts.find_user(username)
            if user is None:
                raise NotFound(f"user '{username}' not found")
            user_id = user["id"]
    return JSON({"items": [_times(k) for k in store.accounts.list_keys(user_id)]})


@router.delete("/keys/{key_id}", summary="Revoke an API key")
def revoke_key(key_id: int, request: Request, who: Principal = Depends(principal)) -> JSON:
    store = runtime(request).store
    mine = {k["id"] for k in store.accounts.list_keys(None if who.is_admin else who.user_id)}
    if key_id not in mine:
        raise NotFound(f"key {key_id} not found")
    return JSON(_times(store.accounts.revoke_key(key_id) or {}))
