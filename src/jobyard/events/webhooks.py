"""Webhooks, the pure part: event types and filters, payloads, signing, target-address policy.

Signing follows Standard Webhooks (https://www.standardwebhooks.com) through its reference
library: headers ``webhook-id`` (``msg_...``, the same on every retry of one message),
``webhook-timestamp`` (integer seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>``); secrets are ``whsec_<base64>``.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from jobyard.core.models import Job

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# A job's state -> the event type its webhook receives.
STATE_EVENTS = {
    "queued": "job.queued",  # on submit, and again before each retry
    "launching": "job.launching",
    "running": "job.running",
    "paused": "job.paused",
    "canceling": "job.canceling",
    "completed": "job.completed",
    "error": "job.failed",  # non-zero exit
    "failed": "job.failed",  # infrastructure failure
    "timeout": "job.timeout",
    "canceled": "job.canceled",
}
OTHER_EVENTS = {"progress": "job.progress"}  # job_events kinds other than "state"
EVENT_TYPES = frozenset([*STATE_EVENTS.values(), *OTHER_EVENTS.values()])
TERMINAL_TYPES = frozenset({"job.completed", "job.failed", "job.timeout", "job.canceled"})
DEFAULT_EVENTS = sorted(TERMINAL_TYPES)  # when a webhook names no events
ALL = "*"


def event_type(kind: str, data: dict[str, Any]) -> str | None:
    """The webhook event type of a job event, or None for kinds webhooks never carry."""
    if kind == "state":
        return STATE_EVENTS.get(str(data.get("to")))
    return OTHER_EVENTS.get(kind)


def normalize_events(names: Iterable[str] | None) -> list[str]:
    """``["completed", "job.failed"]`` -> ``["job.completed", "job.failed"]``; ``*`` is all.

    Raises ValueError naming the unknown ones. None (or empty) means the terminal events.
    """
    wanted: list[str] = []
    unknown: list[str] = []
    for name in names or DEFAULT_EVENTS:
        full = name if name == ALL or name.startswith("job.") else f"job.{name}"
        if full != ALL and full not in EVENT_TYPES:
            unknown.append(name)
        elif full not in wanted:
            wanted.append(full)
    if unknown:
        known = ", ".join(sorted(t.removeprefix("job.") for t in EVENT_TYPES))
        raise ValueError(f"unknown webhook events {unknown}; known: {known}, or '*'")
    return [ALL] if ALL in wanted else sorted(wanted)


def wants(events: Sequence[str] | None, etype: str) -> bool:
    events = events or DEFAULT_EVENTS
    return etype in events or ALL in events


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def payload(
    job: Job, etype: str, event_id: int, ts: float, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The body of one webhook message (Standard Webhooks' ``type``/``timestamp``/``data``).

    The terminal event carries the job's telemetry (cost, efficiency report, last progress).
    """
    body: dict[str, Any] = {
        "job": {
            "id": job.uid, "number": job.id, "name": job.name, "state": str(job.state),
            "substate": job.substate, "attempt": job.attempt, "tags": job.tags,
            "exit_code": job.exit_code, "message": job.message, "error": job.error,
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at),
            "owner": {"user_id": job.user_id, "org_id": job.org_id},
        },
        "event": {"id": event_id, "kind": kind, "ts": iso(ts), "data": data},
    }
    if etype in TERMINAL_TYPES:
        body["telemetry"] = job.telemetry or {}
    return {"type": etype, "timestamp": iso(ts), "data": body}


# signing ---------------------------------------------------------------------------------------
def new_secret() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(delivery_id: int) -> str:
    return f"msg_{delivery_id}"


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``timestamp`` (UNIX seconds)."""
    when = datetime.fromtimestamp(timestamp, UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


# where a webhook may point ---------------------------------------------------------------------
def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """Allowed private networks from config (raises ValueError on a bad CIDR)."""
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def address_refused(addr: Address, allowed: Sequence[Network] = ()) -> bool:
    """True for a private, loopback, link-local, multicast, reserved or unspecified address
    outside every allowed network. IPv4-mapped IPv6 addresses are judged as IPv4."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if any(addr.version == net.version and addr in net for net in allowed):
        return False
    return not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address if it is one, in any notation a resolver accepts
    (``127.1``, ``2130706433``, ``0x7f.0.0.1``); ``localhost`` names count as ``127.0.0.1``."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except (OSError, UnicodeError, ValueError):
        return None


def url_checker(cidrs: Iterable[str]) -> Callable[[str], str | None]:
    """:func:`url_problem` with the configured allowed networks (for the submit check)."""
    allowed = parse_networks(cidrs)
    return lambda url: url_problem(url, allowed)


def url_problem(url: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``url`` cannot be a webhook target (without resolving names), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "the webhook URL must be http:// or https://"
    if not parts.hostname:
        return "the webhook URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the webhook URL must not carry credentials"
    if port == 0:
        return "the webhook URL has an invalid port"
    addr = literal_address(parts.hostname)
    if addr is not None and address_refused(addr, allowed):
        return (f"webhook target {addr} is in a private or reserved range; the server's"
                " webhook_allowed_networks does not allow it")
    return None
