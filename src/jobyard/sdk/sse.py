"""Resumable SSE streams: what each follows, and how it resumes after a dropped connection.

An :class:`SSEPlan` says what a stream requests, what it yields, and when it stops or gives
up; ``Client._sse`` and ``AsyncClient._sse`` drive one over their own httpx client.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx
from httpx_sse import ServerSentEvent

from jobyard.errors import ConnectionFailed, JobyardError
from jobyard.sdk.calls import Call, JobRef, job_path, raise_for_response
from jobyard.sdk.models import Event, Job, LogLine

__all__ = ["EventFollow", "LogFollow", "SSEPlan"]

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
        return min(0.1 * 2 ** (self._failures - 1), 2.0)


class LogFollow(SSEPlan[LogLine]):
    def __init__(self, job: JobRef, offset: int) -> None:
        super().__init__(job_path(job, "/logs"))
        self.offset = offset
        self.end_state: str | None = None

    def request(self) -> tuple[dict[str, Any], dict[str, str]]:
        return {"offset": self.offset, "follow": "true"}, {}

    def handle(self, sse: ServerSentEvent) -> LogLine | None:
        if sse.event == "line":
            line = LogLine.from_dict(sse.json())
            if line.n < self.offset:
                return None  # already seen before a reconnect
            self.offset = line.n + 1
            self.progressed()
            return line
        if sse.event == "end":
            self.end_state = (sse.json() if sse.data else {}).get("state")
            self.done = True
        return None


class EventFollow(SSEPlan[Event]):
    def __init__(self, job: JobRef, last_event_id: str | None) -> None:
        super().__init__(job_path(job, "/events"))
        self.last_event_id = last_event_id

    def request(self) -> tuple[dict[str, Any], dict[str, str]]:
        self.idle = True
        return {}, ({"Last-Event-ID": self.last_event_id} if self.last_event_id else {})

    def probe(self) -> Call[bool] | None:
        # The server closes an idle stream of a job that has ended: nothing is missing.
        return Call("GET", self.path.removesuffix("/events"),
                    lambda r: Job.from_dict(r.json()).is_terminal)

    def handle(self, sse: ServerSentEvent) -> Event | None:
        if not sse.data:
            return None
        event = Event(id=sse.id, kind=sse.event, data=sse.json())
        if sse.id:
            self.last_event_id = sse.id
        self.progressed()
        self.done = event.is_terminal
        return event
