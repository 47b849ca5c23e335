"""Request-size limit as plain ASGI middleware (it must see chunked bodies too).

A body declared too large (``Content-Length``) is refused before the app runs. A body that
grows too large while it is read (chunked, or longer than declared) is refused the same way,
413 with the same answer: the middleware sends it the moment the limit is passed and drops
whatever the app sends afterwards (the app only sees the read fail, however it handles that).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]


class BodySizeLimit:
    """At most ``max_bytes`` per request body; ``overrides`` gives other limits to paths that
    start with a prefix (uploads)."""

    def __init__(self, app: Any, max_bytes: int, overrides: tuple[tuple[str, int], ...] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides

    def _limit(self, path: str) -> int:
        return next((n for prefix, n in self.overrides if path.startswith(prefix)),
                    self.max_bytes)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return
        seen = 0
        started = False  # the app began its answer
        rejected = False  # the 413 went out: the app's answer is dropped

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen, rejected
            if rejected:
                raise TooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not started:
                        rejected = True
                        await _reject(send, limit)
                    raise TooLarge(limit)
            return dict(message)

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except TooLarge:
            if not rejected and not started:
                await _reject(send, limit)


def _body(limit: int) -> bytes:
    return json.dumps({"error": {
        "code": "REQUEST_TOO_LARGE",
        "message": f"request body is larger than {limit} bytes",
        "details": {"max_bytes": limit},
    }}).encode()


async def _reject(send: Any, limit: int) -> None:
    body = _body(limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class TooLarge(HTTPException):
    """The body passed the limit while it was read. An HTTP error (413), so the framework and
    the dialects' route classes pass it on (or answer it: the middleware drops that answer,
    its own 413 went first) instead of reporting a crash."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than {limit} bytes")
