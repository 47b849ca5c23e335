"""Job tokens: a running attempt's credential to report about itself, and nothing else.

``jyt_<job uid>.<attempt>.<hmac>``: stateless (an HMAC with the server's secret), valid only for
that job and attempt, and only while the job is active — the API checks the state on use, so
the token stops working the moment the job ends.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "jyt_"


def job_token(secret: bytes, uid: str, attempt: int) -> str:
    body = f"{uid}.{attempt}"
    return f"{PREFIX}{body}.{_mac(secret, body)}"


def parse_job_token(secret: bytes, token: str) -> tuple[str, int] | None:
    """``(uid, attempt)`` if the token is genuine, else None."""
    if not token.startswith(PREFIX):
        return None
    body, _, mac = token[len(PREFIX):].rpartition(".")
    uid, _, attempt = body.rpartition(".")
    if not uid or not attempt.isdigit() or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    return uid, int(attempt)


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:40]
