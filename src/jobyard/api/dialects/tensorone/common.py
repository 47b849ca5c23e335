"""What every TensorOne route shares: the caller, the job lookup (404/403 as the page shows
them), the status-check rate limit, and the view a status is rendered for."""

from __future__ import annotations

import time

from fastapi import Request

from jobyard.api.deps import origin, read, services
from jobyard.api.dialects.tensorone.shapes import (
    access_denied,
    job_not_found,
)
from jobyard.api.dialects.tensorone.status import View
from jobyard.api.ratelimit import RateLimiter, Verdict
from jobyard.core.models import Job, Principal
from jobyard.core.services import Services
from jobyard.errors import Forbidden, JobNotFound, RateLimited

JOB_ID_MAX = 100


def api_key(request: Request) -> str | None:
    """``Authorization: Bearer <key>``, or the bare key (the page's first example sends
    ``Authorization: <api-key>``)."""
    value = request.headers.get("authorization", "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return value or None


async def caller(request: Request) -> Principal:
    """FastAPI dependency: the owner of the API key, or 401 ``UNAUTHORIZED``."""
    svc = services(request)
    return await read(svc, svc.accounts.authenticate, api_key(request))


def visible_job(svc: Services, who: Principal, job_id: str) -> Job:
    """The job; 404 ``JOB_NOT_FOUND`` when unknown or deleted (retention), 403
    ``ACCESS_DENIED`` when another org's (the page's bodies)."""
    try:
        if len(job_id) > JOB_ID_MAX:
            raise JobNotFound(job_id)
        return svc.jobs.find(who, job_id)
    except JobNotFound:
        raise job_not_found(job_id, svc.config.retention_days) from None
    except Forbidden:
        raise access_denied(job_id) from None


def limiter(request: Request) -> RateLimiter:
    """The status-check limiter of this app (one per server process)."""
    state = request.app.state
    found = getattr(state, "tensorone_status_limiter", None)
    if found is None:
        config = services(request).config
        found = state.tensorone_status_limiter = RateLimiter(
            config.tensorone_status_rate_limit, "tensorone-status", config.rate_limit_storage)
    return found


def check_rate(request: Request, who: Principal) -> dict[str, str]:
    """Count one status check against the caller's API key; 429 ``RATE_LIMIT_EXCEEDED``
    past the limit. Returns the ``X-RateLimit-*`` headers for the answer."""
    rl = limiter(request)
    verdict: Verdict = rl.hit(f"key:{who.key_id}" if who.key_id is not None
                              else f"user:{who.user_id}")
    headers = verdict.headers()
    request.state.tensorone_headers = headers  # on the answer, whatever it is (shapes.py)
    if not verdict.allowed:
        raise RateLimited("Too many status check requests", {
            "limit": verdict.limit, "window": rl.window, "retryAfter": verdict.retry_after,
            "recommendation": "Use webhooks or SSE for real-time updates",
        })
    return headers


def view(request: Request, include: frozenset[str]) -> View:
    return View(include=include, now=time.time(), prices=services(request).prices,
                base_url=origin(request))
