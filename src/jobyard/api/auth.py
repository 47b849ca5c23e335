"""API-key authentication: ``Authorization: Bearer jy_...``, looked up by hash on every request
(so a revocation is effective on the next request, on every replica)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from jobyard import ids
from jobyard.core.models import Principal
from jobyard.errors import Forbidden, Unauthorized
from jobyard.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def principal_for(rt: Runtime, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    who = rt.store.accounts.principal_for_key(ids.hash_key(secret))
    if who is None:
        raise Unauthorized("unknown or revoked API key")
    return who


T = TypeVar("T")


async def read(rt: Runtime, fn: Callable[..., T], *args: Any) -> T:
    """Run a store read on the loop where that is cheaper than a thread (see Engines)."""
    return await rt.read(fn, *args)


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    rt = runtime(request)
    return await read(rt, principal_for, rt, bearer_token(request))


async def admin(request: Request) -> Principal:
    who = await principal(request)
    if not who.is_admin:
        raise Forbidden("this needs an admin API key")
    return who
