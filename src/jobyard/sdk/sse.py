"""Resumable SSE streams: how a stream resumes after a dropped connection.

An :class:`SSEPlan` says what a stream requests, what it yields, and when it stops or gives
up; ``Client._sse`` and ``AsyncClient._sse`` drive one over their own httpx client. The plans
for a job's log and events (:class:`~jobyard.sdk.jobs.LogFollow`,
:class:`~jobyard.sdk.jobs.EventFollow`) live with jobs.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx
from httpx_sse import ServerSentEvent

from jobyard.errors import ConnectionFailed, JobyardError
from jobyard.sdk.calls import Call, raise_for_response

__all__ = ["SSEPlan"]

T = TypeVar("T")


class SSEPlan(Generic[T]):
    """What a resumable SSE loop requests, what it yields, and when it stops or gives up."""

    max_failures = 5

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = False
        self.idle = True  # the current connection has yielded nothing yet
        self._failures = 0

    def request(self) -> tuple[dict[str, Any], dict[str, str]]:
        raise NotImplementedError

    def probe(self) -> Call[bool] | None:
        """After a clean close that yielded nothing: a call answering "nothing more to come"."""
        return None

    def handle(self, sse: ServerSentEvent) -> T | None:
        raise NotImplementedError

    def check(self, response: httpx.Response) -> None:
        raise_for_response(response)
        ctype = response.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            raise JobyardError(
                f"expected text/event-stream from {response.url}, got {ctype or 'nothing'}"
            )

    def progressed(self) -> None:
        self._failures = 0
        self.idle = False

    def lost(self, exc: Exception | None, url: str) -> float:
        """The connection ended early: how long to wait before resuming (or give up)."""
        if isinstance(exc, httpx.ReadTimeout):
            return 0.0  # only quiet; the server was there
        self._failures += 1
        if self._failures > self.max_failures:
            why = (str(exc) or type(exc).__name__) if exc else "stream closed before the end"
            raise ConnectionFailed(f"lost the stream {url}{self.path}: {why}", {"url": url})
        return float(min(0.1 * 2 ** (self._failures - 1), 2.0))
