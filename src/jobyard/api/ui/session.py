"""Dashboard sessions: an API key typed at ``/ui/login`` becomes an HttpOnly, SameSite=Strict
cookie holding a link signed with the server secret (the key's hash and a session id, never
the key), checked against the store on every request (a revoked key ends the session). Every
form that changes something carries a CSRF token bound to the session id; the login form one
bound to a nonce cookie set with the form.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.responses import Response

from jobyard import ids
from jobyard.core.models import Principal
from jobyard.core.services import Services
from jobyard.errors import Unauthorized

COOKIE = "jobyard_session"
LOGIN_COOKIE = "jobyard_login"
SESSION_LINK = "ui-session"
CSRF_LINK = "ui-csrf"
LOGIN_LINK = "ui-login"
LOGIN_TTL_S = 3600
SESSION_TTL_S = 12 * 3600


class NoSession(Exception):
    """The request has no valid session: the dashboard shows the login page."""


def start(svc: Services, response: Response, api_key: str, secure: bool) -> Principal:
    """Log in with ``api_key`` (401 if it is unknown or revoked): the session cookie is set
    on ``response``."""
    who = svc.accounts.authenticate(api_key)
    token = svc.signer.link(SESSION_LINK, (ids.hash_key(api_key), ids.random_token(16)),
                            SESSION_TTL_S)
    response.set_cookie(COOKIE, token, max_age=int(SESSION_TTL_S), path="/ui", httponly=True,
                        samesite="strict", secure=secure)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return who


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui")


def current(svc: Services, request: Request) -> tuple[Principal, str]:
    """The session's owner and its CSRF token; :class:`NoSession` without a valid one."""
    parts = svc.signer.read_link(SESSION_LINK, request.cookies.get(COOKIE) or "")
    if parts is None or len(parts) != 2:
        raise NoSession()
    try:
        who = svc.accounts.by_key_hash(parts[0])
    except Unauthorized:
        raise NoSession() from None
    return who, svc.signer.link(CSRF_LINK, (parts[1],), SESSION_TTL_S)


def check_csrf(svc: Services, request: Request, token: str | None) -> None:
    """A state change's form token must be this session's (403 otherwise)."""
    parts = svc.signer.read_link(SESSION_LINK, request.cookies.get(COOKIE) or "")
    got = svc.signer.read_link(CSRF_LINK, token or "")
    if parts is None or got is None or not hmac.compare_digest(got[0], parts[1]):
        raise CsrfRefused()


def login_nonce(svc: Services, request: Request) -> tuple[str, str]:
    """The login form's token and the nonce it is bound to (:func:`set_login_nonce`)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or ids.random_token(16)
    return svc.signer.link(LOGIN_LINK, (nonce,), LOGIN_TTL_S), nonce


def set_login_nonce(response: Response, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_TTL_S, path="/ui", httponly=True,
                        samesite="strict")


def check_login(svc: Services, request: Request, token: str | None) -> None:
    """The login form's token must be bound to this browser's nonce cookie (403 otherwise)."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    got = svc.signer.read_link(LOGIN_LINK, token or "")
    if not nonce or got is None or not hmac.compare_digest(got[0], nonce):
        raise CsrfRefused()


class CsrfRefused(Exception):
    """A form without this session's token: refused (403), nothing changed."""
