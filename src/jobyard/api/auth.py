"""API-key authentication: ``Authorization: Bearer jy_...``, looked up by hash on every request
(so a revocation is effective on the next request, on every replica)."""

from __future__ import annotations

from fastapi import Request

from jobyard.api.deps import read, services
from jobyard.core.accounts import require_admin
from jobyard.core.models import Principal


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    svc = services(request)
    return await read(svc, svc.accounts.authenticate, bearer_token(request))


async def admin(request: Request) -> Principal:
    """FastAPI dependency: the caller, who must hold an admin key (401, 403)."""
    return require_admin(await principal(request))
