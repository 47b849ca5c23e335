"""Who calls the Integrate.io API, for which account, and at what cost.

In this order, for every route under ``/{account_id}/api/``:

1. ``Accept`` must name ``application/vnd.xplenty+json``; a version, if given, must be 2
   (``; version=2`` as the seed writes it, or ``version=2`` without the ``;`` as the SDK sends
   it). Otherwise 404, as the seed warns.
2. HTTP Basic auth with the API key as the username: ``base64(key)`` (the SDK) or
   ``base64(key:)`` (``curl -u KEY:``); anything after a ``:`` is ignored. 401 otherwise.
3. ``account_id`` is the caller's org: its name, or its numeric id. Any other → 404.
4. Credits: ``xplenty_rate_limit`` (5000/hour) per user, one per call; past it, 429 with
   ``Retry-After``. ``rate_limit_status`` costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from jobyard.api.deps import origin, read, services
from jobyard.api.ratelimit import RateLimiter, Verdict
from jobyard.api.validation import MAX_ROW_ID, text_problem
from jobyard.core.models import Principal
from jobyard.core.packages import PackageService
from jobyard.core.services import Services
from jobyard.errors import NotFound, RateLimited, Unauthorized

MEDIA = "application/vnd.xplenty+json"
_VERSION = re.compile(r"version\s*=\s*\"?([0-9.]+)", re.I)
# An account is an org's name or number (``OrgIn``'s names); anything else is none.
_ACCOUNT = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True, slots=True)
class Caller:
    who: Principal
    svc: Services
    account: str  # as written in the path
    origin: str  # the server's URL, e.g. http://127.0.0.1:8750
    verdict: Verdict

    @property
    def base(self) -> str:
        """The account's API root, e.g. ``http://127.0.0.1:8750/default/api``."""
        return f"{self.origin}/{self.account}/api"

    @property
    def packages(self) -> PackageService:
        return self.svc.packages


def accepts_v2(header: str) -> bool:
    for part in header.split(","):
        if MEDIA in part.lower():
            found = _VERSION.search(part)
            return found is None or found.group(1) in ("2", "2.0")
    return False


def basic_key(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    token = token.strip()
    if not token.isascii():  # base64 is ASCII; a header may carry any byte
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    key = decoded.split(":", 1)[0].strip()
    return key if key and text_problem(key) is None else None


def account_form(account_id: str) -> bool:
    """Whether ``account_id`` can name an org at all: a name as orgs have them, or a number
    a row can have."""
    if not _ACCOUNT.fullmatch(account_id):
        return False
    return not account_id.isdigit() or int(account_id) <= MAX_ROW_ID


def limiter(request: Request, svc: Services) -> RateLimiter:
    """One limiter per app (the spec comes from the config)."""
    state = request.app.state
    found = getattr(state, "xplenty_limiter", None)
    if found is None:
        found = state.xplenty_limiter = RateLimiter(svc.config.xplenty_rate_limit, "xplenty",
                                                    svc.config.rate_limit_storage)
    return found


def caller(cost: int = 1) -> Callable[[Request, str], Awaitable[Caller]]:
    """The FastAPI dependency for a route costing ``cost`` credits."""

    async def dependency(request: Request, account_id: str) -> Caller:
        if not accepts_v2(request.headers.get("accept", "")):
            raise NotFound("not found: send 'Accept: application/vnd.xplenty+json; version=2'")
        svc = services(request)
        header = request.headers.get("authorization", "")
        key = basic_key(header)
        if key is None:
            raise Unauthorized("missing or malformed credentials: send your API key as the "
                               "HTTP Basic username (curl -u YOUR_API_KEY: ...)")
        who = await read(svc, svc.accounts.authenticate, key)
        org = (await read(svc, svc.accounts.org_for_account, account_id)
               if account_form(account_id) else None)
        if org is None or org[0] != who.org_id:
            raise NotFound(f"account {account_id} not found")
        rule = limiter(request, svc)
        verdict = rule.hit(f"user:{who.user_id}", cost) if cost else rule.peek(
            f"user:{who.user_id}")
        request.state.xplenty_headers = verdict.headers()
        if not verdict.allowed:
            raise RateLimited(
                f"rate limit exceeded: {verdict.limit} API credits per {rule.window} per user; "
                f"retry in {verdict.retry_after} s",
                {"retry_after": verdict.retry_after})
        return Caller(who, svc, account_id, origin(request), verdict)

    return dependency


charged = caller(1)
free = caller(0)
