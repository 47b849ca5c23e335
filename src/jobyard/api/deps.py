"""What routes depend on: the server's :class:`~jobyard.core.services.Services` (and nothing
else of it), and the rule for running a store read from an ``async def`` route.

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
