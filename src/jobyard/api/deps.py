"""What routes depend on: the server's :class:`~jobyard.core.services.Services` (and nothing
else of it), the rule for running a store read from an ``async def`` route, and the origin
the links the server hands out point to.

Routes are ``def`` when they write or do blocking work (FastAPI runs them in its thread
pool), ``async def`` when they only read (the read then runs inline on SQLite, where it costs
microseconds, or in a thread on PostgreSQL: :func:`read`) or stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from jobyard.core.services import Services

T = TypeVar("T")


def services(conn: HTTPConnection) -> Services:
    """The server's services (an HTTP request's or a WebSocket's)."""
    return conn.app.state.services  # type: ignore[no-any-return]


async def read(svc: Services, fn: Callable[..., T], *args: Any) -> T:
    """Run a store read from an async route: inline where that is cheaper than a thread."""
    if svc.reads_inline:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def origin(conn: HTTPConnection, route_path: str | None = None) -> str:
    """Where the links this server hands out (downloads, uploads, outputs) point: the
    configured ``public_url`` when set (behind a proxy the ``Host`` header is the client's to
    choose), else the server as this client reached it: scheme, host and any path prefix,
    which is the request's URL less ``route_path`` when given (a prefix the proxy did not
    announce), else the app's root. A WebSocket's origin is its HTTP twin."""
    public = services(conn).config.public_url
    if public:
        return public.rstrip("/")
    if route_path is None:
        text = str(conn.base_url)
    else:
        text = str(conn.url.replace(query="")).removesuffix(route_path)
    return ("http" + text[2:] if text.startswith("ws") else text).rstrip("/")
