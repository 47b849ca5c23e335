"""Webhooks on the wire: signing, and the policy of which addresses a webhook may target.
(Event types, payloads and secrets are the domain's: ``jobyard.core.webhooks``.)

Signing follows Standard Webhooks (https://www.standardwebhooks.com) through its reference
library: headers ``webhook-id`` (``msg_...``, the same on every retry of one message),
``webhook-timestamp`` (integer seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>``); secrets are ``whsec_<base64>``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from standardwebhooks import Webhook

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# signing ---------------------------------------------------------------------------------------
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
