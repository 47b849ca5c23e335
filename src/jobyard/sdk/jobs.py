"""Jobs in the SDK: ``client.jobs`` (blocking and asyncio), their models, their calls and the
resumable streams of a job's log and events.

>>> job = client.jobs.submit(["python", "train.py"], gpus=1)
>>> for line in client.jobs.logs(job.id, follow=True):
...     print(line.text)
>>> client.jobs.wait(job.id).state
'completed'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload

import httpx
from httpx_sse import ServerSentEvent

from jobyard.sdk.calls import Call, clean, segment
from jobyard.sdk.models import Page, _Model, parse_time
from jobyard.sdk.sse import SSEPlan

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["TERMINAL_STATES", "AsyncJobs", "Event", "EventFollow", "Job", "JobCalls", "JobRef",
           "Jobs", "LogFollow", "LogLine", "LogPage", "SubmitOptions"]

# The states a job never leaves (the server's ``core/states.py``: TERMINAL; a test keeps the two
# equal). Written out here because the SDK knows the server only by its HTTP API.
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "error", "failed", "timeout",
                                             "canceled"})


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class Job(_Model):
    """A job as the server last reported it. ``raw`` holds the full JSON."""

    id: str
    state: str
    number: int | None = None
    name: str | None = None
    substate: str | None = None
    command: str | list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    instance_type: str | None = None
    priority: int = 0
    time_limit_s: float | None = None
    retry: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    attempt: int = 1
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    message: str | None = None
    error: dict[str, Any] | None = None
    next_retry_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    paused_at: datetime | None = None  # since when it is paused; None unless ``paused``
    paused_s: float = 0.0  # seconds this attempt was paused before (not on its time limit)
    assigned: dict[str, Any] | None = None
    cancel_receipt: dict[str, Any] | None = None
    waiting: dict[str, Any] | None = None
    owner: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None  # {"id", "ephemeral", ...}: which cluster runs it
    # What the job reported of its current attempt, and what it costs.
    progress: float | None = None
    current_step: str | None = None
    metadata: dict[str, Any] | None = None
    throughput: dict[str, Any] | None = None
    items: dict[str, Any] | None = None
    estimated_completion: datetime | None = None
    cost: dict[str, Any] | None = None
    cold_start: dict[str, Any] | None = None
    efficiency: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the job has ended (completed, error, failed, timeout or canceled)."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "completed"

    @property
    def gpus(self) -> int:
        return int(self.resources.get("gpus") or 0)

    @property
    def duration_s(self) -> float | None:
        """Run time so far (or in total, once finished); None before it started."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return max(0.0, (end - self.started_at).total_seconds())


JobRef = str | int | Job
"""A job: its ``job_...`` id, its number, or a :class:`Job`."""


class SubmitOptions(TypedDict, total=False):
    name: str | None
    env: dict[str, str] | None
    workdir: str | None
    gpus: int
    cpus: float
    memory_mb: int
    instance_type: str | None
    priority: int
    time_limit_s: float | None
    retry: int | dict[str, Any] | None
    tags: list[str] | None
    webhook: str | dict[str, Any] | None
    idempotency_key: str | None
    cluster_id: str | None
    outputs: list[str] | None  # files to keep, relative to workdir ("ckpt/", "*.pt")


@dataclass(frozen=True, slots=True)
class LogLine(_Model):
    n: int
    text: str
    stream: str = "stdout"
    ts: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogLine]
    next_offset: int
    eof: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogPage:
        return cls(
            lines=[LogLine.from_dict(line) for line in data.get("lines", [])],
            next_offset=int(data.get("next_offset") or 0),
            eof=bool(data.get("eof")),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a job's event log (``GET /v1/jobs/{id}/events``)."""

    id: str
    kind: str
    data: dict[str, Any]

    @property
    def state(self) -> str | None:
        return self.data.get("state")

    @property
    def job_id(self) -> str | None:
        return self.data.get("job_id")

    @property
    def ts(self) -> datetime | None:
        return parse_time(self.data.get("ts"))

    @property
    def is_terminal(self) -> bool:
        """A ``state`` event into a terminal state: the last event of the stream."""
        return self.kind == "state" and self.state in TERMINAL_STATES


# --------------------------------------------------------------------------- calls


def job_path(job: JobRef, suffix: str = "") -> str:
    job_id = job.id if isinstance(job, Job) else job
    return f"/v1/jobs/{segment(job_id)}{suffix}"


def _parse_job(response: httpx.Response) -> Job:
    return Job.from_dict(response.json())


def _parse_job_page(response: httpx.Response) -> Page[Job]:
    body = response.json()
    return Page([Job.from_dict(j) for j in body["items"]], body.get("next_cursor"))


class JobCalls:
    """Request building and answer parsing for /v1/jobs."""

    @staticmethod
    def submit(command: str | list[str], **options: Unpack[SubmitOptions]) -> Call[Job]:
        unknown = set(options) - SubmitOptions.__optional_keys__
        if unknown:
            raise TypeError(f"submit() got unexpected options: {', '.join(sorted(unknown))}")
        o: dict[str, Any] = dict(options)
        retry = o.get("retry")
        body = clean({
            "command": command if isinstance(command, str) else [str(a) for a in command],
            "name": o.get("name"),
            "env": dict(o.get("env") or {}),
            "workdir": o.get("workdir"),
            "resources": {
                "gpus": o.get("gpus", 0), "cpus": o.get("cpus", 1),
                "memory_mb": o.get("memory_mb", 0),
            },
            "instance_type": o.get("instance_type"),
            "priority": o.get("priority", 0),
            "time_limit_s": o.get("time_limit_s"),
            "retry": {"max_retries": retry} if isinstance(retry, int) else retry,
            "tags": list(o.get("tags") or []),
            "webhook": {"url": hook} if isinstance(hook := o.get("webhook"), str) else hook,
            "cluster_id": o.get("cluster_id"),
            "outputs": list(o.get("outputs") or []),
        })
        key = o.get("idempotency_key")
        headers = {"Idempotency-Key": key} if key else None
        return Call("POST", "/v1/jobs", _parse_job, json=body, headers=headers)

    @staticmethod
    def get(job: JobRef) -> Call[Job]:
        return Call("GET", job_path(job), _parse_job)

    @staticmethod
    def list(
        state: str | None, tag: str | None, name: str | None, limit: int, cursor: str | None
    ) -> Call[Page[Job]]:
        params = clean({"state": state, "tag": tag, "name": name, "limit": limit,
                        "cursor": cursor})
        return Call("GET", "/v1/jobs", _parse_job_page, params=params)

    @staticmethod
    def metrics(job: JobRef) -> Call[dict[str, Any]]:
        return Call("GET", job_path(job, "/metrics"), lambda r: r.json())

    @staticmethod
    def cancel(job: JobRef) -> Call[Job]:
        return Call("POST", job_path(job, "/cancel"), _parse_job)

    @staticmethod
    def pause(job: JobRef) -> Call[Job]:
        return Call("POST", job_path(job, "/pause"), _parse_job)

    @staticmethod
    def resume(job: JobRef) -> Call[Job]:
        return Call("POST", job_path(job, "/resume"), _parse_job)

    @staticmethod
    def logs(job: JobRef, offset: int, limit: int, tail: int | None) -> Call[LogPage]:
        params = {"tail": tail} if tail is not None else {"offset": offset, "limit": limit}
        return Call("GET", job_path(job, "/logs"), lambda r: LogPage.from_dict(r.json()),
                    params=params)


# --------------------------------------------------------------------------- streams


class LogFollow(SSEPlan[LogLine]):
    """A job's log as it is written, from ``offset``; ends with the job."""

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
    """A job's events as they happen, after ``last_event_id``; ends after the terminal one."""

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


# --------------------------------------------------------------------------- namespaces

WAIT_FIRST_DELAY_S = 0.05
WAIT_MAX_DELAY_S = 2.0


def wait_delay(job: Job, delay: float, deadline: float | None) -> float:
    """How long ``wait`` sleeps before polling ``job`` again; TimeoutError past ``deadline``."""
    if deadline is None:
        return delay
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"timed out waiting for job {job.id} (still {job.state})")
    return min(delay, remaining)


class Jobs:
    """``client.jobs``: submit, inspect, follow, cancel, pause and resume jobs."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        """Submit ``command`` (a shell string or an argv list). Options: name, env, workdir,
        gpus, cpus, memory_mb, instance_type, priority, time_limit_s, retry (an int: max
        retries, or the API's dict), tags, webhook (a URL, or ``{"url", "events"}``),
        idempotency_key, cluster_id, outputs."""
        return self._c._send(JobCalls.submit(command, **options))

    def get(self, job_id: JobRef) -> Job:
        """One job, by ``job_...`` id or number."""
        return self._c._send(JobCalls.get(job_id))

    def metrics(self, job_id: JobRef) -> dict[str, Any]:
        """The current attempt's resources as the API gives them: ``series``, ``latest``,
        ``averages``, ``peaks``, ``cold_start``, ``cost``, ``efficiency``."""
        return self._c._send(JobCalls.metrics(job_id))

    def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first; pass ``page.next_cursor`` for the next one."""
        return self._c._send(JobCalls.list(state, tag, name, limit, cursor))

    def list(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50,
    ) -> Iterator[Job]:
        """Every matching job, newest first, fetching pages of ``limit`` as it goes."""
        cursor: str | None = None
        while True:
            page = self.list_page(state, tag, name, limit, cursor)
            yield from page.items
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    def cancel(self, job_id: JobRef) -> Job:
        """Ask to cancel; returns the job (``canceling``, or ``canceled`` if it never ran)."""
        return self._c._send(JobCalls.cancel(job_id))

    def pause(self, job_id: JobRef) -> Job:
        """Ask to pause a running job; returns it (``paused``; already paused: unchanged).
        Its processes stop, its time limit stops running, its resources stay held (and cost
        keeps accruing). A job that is not running raises :class:`Conflict`."""
        return self._c._send(JobCalls.pause(job_id))

    def resume(self, job_id: JobRef) -> Job:
        """Ask to resume a paused job; returns it (``running``; already running: unchanged).
        A job that is neither raises :class:`Conflict`."""
        return self._c._send(JobCalls.resume(job_id))

    @overload
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: Literal[False] = False,
    ) -> LogPage: ...
    @overload
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: Literal[True],
    ) -> Iterator[LogLine]: ...
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: bool = False,
    ) -> LogPage | Iterator[LogLine]:
        """A page of log lines; with ``follow=True`` an iterator of lines (from ``offset``,
        or the last ``tail`` lines) as they are written, until the job ends."""
        if follow:
            return self._follow(job_id, offset, tail)
        return self._c._send(JobCalls.logs(job_id, offset, limit, tail))

    def _follow(self, job_id: JobRef, offset: int, tail: int | None) -> Iterator[LogLine]:
        if tail is not None:
            page = self.logs(job_id, tail=tail)
            yield from page.lines
            offset = page.next_offset
        yield from self._c._sse(LogFollow(job_id, offset))

    def wait(self, job_id: JobRef, timeout: float | None = None) -> Job:
        """Poll until the job ends and return it; ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = WAIT_FIRST_DELAY_S
        while True:
            job = self.get(job_id)
            if job.is_terminal:
                return job
            time.sleep(wait_delay(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events as they happen, resuming after a dropped connection;
        ends after the terminal event."""
        return self._c._sse(EventFollow(job_id, last_event_id))


class AsyncJobs:
    """``AsyncClient.jobs``: see :class:`Jobs`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        return await self._c._send(JobCalls.submit(command, **options))

    async def get(self, job_id: JobRef) -> Job:
        return await self._c._send(JobCalls.get(job_id))

    async def metrics(self, job_id: JobRef) -> dict[str, Any]:
        """See :meth:`Jobs.metrics`."""
        return await self._c._send(JobCalls.metrics(job_id))

    async def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        return await self._c._send(JobCalls.list(state, tag, name, limit, cursor))

    async def list(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50,
    ) -> AsyncIterator[Job]:
        cursor: str | None = None
        while True:
            page = await self.list_page(state, tag, name, limit, cursor)
            for job in page.items:
                yield job
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: JobRef) -> Job:
        return await self._c._send(JobCalls.cancel(job_id))

    async def pause(self, job_id: JobRef) -> Job:
        """See :meth:`Jobs.pause`."""
        return await self._c._send(JobCalls.pause(job_id))

    async def resume(self, job_id: JobRef) -> Job:
        """See :meth:`Jobs.resume`."""
        return await self._c._send(JobCalls.resume(job_id))

    async def _page(self, job_id: JobRef, offset: int, limit: int, tail: int | None) -> LogPage:
        return await self._c._send(JobCalls.logs(job_id, offset, limit, tail))

    @overload
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: Literal[False] = False,
    ) -> Awaitable[LogPage]: ...
    @overload
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: Literal[True],
    ) -> AsyncIterator[LogLine]: ...
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: bool = False,
    ) -> Any:
        """``await jobs.logs(id)`` for a page; ``async for line in jobs.logs(id, follow=True)``."""
        if follow:
            return self._follow(job_id, offset, tail)
        return self._page(job_id, offset, limit, tail)

    async def _follow(
        self, job_id: JobRef, offset: int, tail: int | None
    ) -> AsyncIterator[LogLine]:
        if tail is not None:
            page = await self._page(job_id, 0, 0, tail)
            for line in page.lines:
                yield line
            offset = page.next_offset
        async for line in self._c._sse(LogFollow(job_id, offset)):
            yield line

    async def wait(self, job_id: JobRef, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = WAIT_FIRST_DELAY_S
        while True:
            job = await self.get(job_id)
            if job.is_terminal:
                return job
            await asyncio.sleep(wait_delay(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> AsyncIterator[Event]:
        return self._c._sse(EventFollow(job_id, last_event_id))
