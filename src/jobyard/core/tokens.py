"""Signed tokens: job tokens and expiring links.

A job token is a running attempt's credential to report about itself, and nothing else:

``jyt_<job uid>.<attempt>.<hmac>``: stateless (an HMAC with the server's secret), valid only for
that job and attempt, and only while the job is active — the API checks the state on use, so
the token stops working the moment the job ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable

from jobyard.errors import Unauthorized

PREFIX = "jyt_"
# What a MAC and an attempt look like: checked before comparing (a token comes from a header
# or a URL and may hold any character; ``hmac.compare_digest`` refuses non-ASCII text).
_MAC = re.compile(r"[0-9a-f]{40}")
_ATTEMPT = re.compile(r"[0-9]{1,9}")


def job_token(secret: bytes, uid: str, attempt: int) -> str:
    body = f"{uid}.{attempt}"
    return f"{PREFIX}{body}.{_mac(secret, body)}"


def parse_job_token(secret: bytes, token: str) -> tuple[str, int] | None:
    """``(uid, attempt)`` if the token is genuine, else None."""
    if not token.startswith(PREFIX):
        return None
    body, _, mac = token[len(PREFIX):].rpartition(".")
    uid, _, attempt = body.rpartition(".")
    if not uid or not _ATTEMPT.fullmatch(attempt) or not _MAC.fullmatch(mac):
        return None
    if not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    return uid, int(attempt)


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:40]


def signed_link(secret: bytes, purpose: str, parts: tuple[str, ...], expires: int) -> str:
    """A URL-safe token that carries ``parts`` and an expiry (UNIX seconds), for links that
    must work without an API key (downloads, uploads). ``purpose`` keeps one kind of link from
    being replayed as another."""
    payload = base64.urlsafe_b64encode(json.dumps([*parts, expires]).encode()).decode()
    return f"{payload.rstrip('=')}.{_mac(secret, purpose + '.' + payload)}"


def read_link(secret: bytes, purpose: str, token: str, now: float) -> tuple[str, ...] | None:
    """The ``parts`` of a genuine, unexpired link token, else None."""
    payload, _, mac = token.partition(".")
    if not _MAC.fullmatch(mac) or not payload.isascii():
        return None
    padded = payload + "=" * (-len(payload) % 4)
    if not hmac.compare_digest(mac, _mac(secret, purpose + "." + padded)):
        return None
    try:
        *parts, expires = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return None
    if not isinstance(expires, int) or expires < now or not all(isinstance(p, str) for p in parts):
        return None
    return tuple(parts)


class Signer:
    """The server secret's uses, for the API: job tokens and expiring links."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time):
        self._secret = secret
        self._clock = clock

    def job_token(self, uid: str, attempt: int) -> str:
        return job_token(self._secret, uid, attempt)

    def job_token_owner(self, token: str | None) -> tuple[str, int]:
        """``(uid, attempt)`` a genuine job token is for; 401 otherwise."""
        if not token:
            raise Unauthorized("missing job token: send 'Authorization: Bearer "
                               "$JOBYARD_JOB_TOKEN'")
        owner = parse_job_token(self._secret, token)
        if owner is None:
            raise Unauthorized("invalid job token")
        return owner

    def link(self, purpose: str, parts: tuple[str, ...], ttl_s: float) -> str:
        """A link token for ``parts``, good for ``ttl_s`` seconds."""
        return signed_link(self._secret, purpose, parts, int(self._clock() + ttl_s))

    def read_link(self, purpose: str, token: str) -> tuple[str, ...] | None:
        """The parts of a genuine, unexpired link token of ``purpose``, else None."""
        return read_link(self._secret, purpose, token, self._clock())
