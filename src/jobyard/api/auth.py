"""API-key authentication: ``Authorization: Bearer jy_...``, looked up by hash on every request
(so a revocation is effective on the next request, on every replica)."""

from __future__ import annotations

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
    who = rt.store.principal_for_key(ids.hash_key(secret))
    if who is None:
        raise Unauthorized("unknown or revoked API key")
    return who


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    return principal_for(runtime(request), bearer_token(request))


def admin(request: Request) -> Principal:
    who = principal(request)
    if not who.is_admin:
        raise Forbidden("this needs an admin API key")
    return who
