"""Request-size limit as plain ASGI middleware (it must see chunked bodies too)."""

from __future__ import annotations

import json
from typing import Any

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
            await self._reject(send, limit)
            return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return dict(message)

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send, limit)

    async def _reject(self, send: Any, limit: int) -> None:
        body = json.dumps({"error": {
            "code": "REQUEST_TOO_LARGE",
            "message": f"request body is larger than {limit} bytes",
            "details": {"max_bytes": limit},
        }}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
