"""The Python SDK: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

>>> from jobyard import Client
>>> with Client() as client:                       # URL and key: args, env, or `jobyard login`
...     job = client.jobs.submit(["python", "train.py"], gpus=1)
...     for line in client.jobs.logs(job.id, follow=True):
...         print(line.text)
...     job = client.jobs.wait(job.id)

Every request is built and its answer parsed once, as a :class:`Call` (see ``_Calls``); the
two clients only run calls over their own httpx client. Resumable SSE streams are driven by
the shared ``_SSEPlan`` objects. Errors are the classes of :mod:`jobyard.errors`; a server
that cannot be reached raises :class:`ConnectionFailed`, naming the URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack, overload
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from jobyard import __version__, errors
from jobyard.errors import JobyardError
from jobyard.sdk.models import ApiKey, Event, Job, LogLine, LogPage, Me, Org, Page, User
from jobyard.sdk.settings import resolve

__all__ = ["AsyncClient", "Client", "ConnectionFailed", "JobRef", "SubmitOptions"]

T = TypeVar("T")

WAIT_FIRST_DELAY_S = 0.05
WAIT_MAX_DELAY_S = 2.0

JobRef = str | int | Job
"""A job: its ``job_...`` id, its number, or a :class:`Job`."""


class ConnectionFailed(JobyardError):
    """The Jobyard server could not be reached."""

    code = "CONNECTION_FAILED"
    status = 503


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
    idempotency_key: str | None


# --------------------------------------------------------------------------- errors

_BY_STATUS: dict[int, type[JobyardError]] = {
    400: errors.ValidationFailed,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.ValidationFailed,
    429: errors.RateLimited,
}


def _validation_message(detail: list[Any]) -> str:
    parts = []
    for item in detail[:3]:
        item = item if isinstance(item, dict) else {"msg": str(item)}
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        parts.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
    if len(detail) > 3:
        parts.append(f"and {len(detail) - 3} more")
    return "invalid request: " + "; ".join(parts)


def error_from_response(response: httpx.Response) -> JobyardError:
    """The :mod:`jobyard.errors` exception for an error answer: by the envelope's code,
    else by FastAPI's validation shape, else by HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    cls = _BY_STATUS.get(response.status_code, JobyardError)
    code: str | None = None
    message: str | None = None
    details: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message")
        details = dict(err.get("details") or {})
        cls = errors.BY_CODE.get(code or "", cls)
    elif isinstance(body, dict) and isinstance(body.get("detail"), list):
        cls = errors.ValidationFailed
        details = {"detail": body["detail"]}
        message = _validation_message(body["detail"])
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]
    if not message:
        text = response.text.strip()[:200]
        message = f"HTTP {response.status_code} {response.reason_phrase}" + (
            f": {text}" if text else ""
        )
    if issubclass(cls, errors.RateLimited) and "retry-after" in response.headers:
        try:
            details.setdefault("retry_after", float(response.headers["retry-after"]))
        except ValueError:
            details.setdefault("retry_after", response.headers["retry-after"])
    exc = cls(message, details)
    exc.status = response.status_code
    if code and code != cls.code:
        exc.code = code  # a code this SDK does not know, e.g. REQUEST_TOO_LARGE
    if issubclass(cls, errors.RateLimited):
        exc.retry_after = details.get("retry_after")  # type: ignore[attr-defined]
    return exc


def raise_for_response(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to parse its (successful) answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None


def _job_path(job: JobRef, suffix: str = "") -> str:
    job_id = job.id if isinstance(job, Job) else job
    return f"/v1/jobs/{quote(str(job_id), safe='')}{suffix}"


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


def _parse_job(response: httpx.Response) -> Job:
    return Job.from_dict(response.json())


def _parse_job_page(response: httpx.Response) -> Page[Job]:
    body = response.json()
    return Page([Job.from_dict(j) for j in body["items"]], body.get("next_cursor"))


class _Calls:
    """Request building and answer parsing for every endpoint, shared by both clients."""

    @staticmethod
    def submit(command: str | list[str], **options: Unpack[SubmitOptions]) -> Call[Job]:
        unknown = set(options) - SubmitOptions.__optional_keys__
        if unknown:
            raise TypeError(f"submit() got unexpected options: {', '.join(sorted(unknown))}")
        o: dict[str, Any] = dict(options)
        retry = o.get("retry")
        body = _clean({
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
        })
        key = o.get("idempotency_key")
        headers = {"Idempotency-Key": key} if key else None
        return Call("POST", "/v1/jobs", _parse_job, json=body, headers=headers)

    @staticmethod
    def get_job(job: JobRef) -> Call[Job]:
        return Call("GET", _job_path(job), _parse_job)

    @staticmethod
    def list_jobs(
        state: str | None, tag: str | None, name: str | None, limit: int, cursor: str | None
    ) -> Call[Page[Job]]:
        params = _clean({"state": state, "tag": tag, "name": name, "limit": limit,
                         "cursor": cursor})
        return Call("GET", "/v1/jobs", _parse_job_page, params=params)

    @staticmethod
    def cancel(job: JobRef) -> Call[Job]:
        return Call("POST", _job_path(job, "/cancel"), _parse_job)

    @staticmethod
    def logs(job: JobRef, offset: int, limit: int, tail: int | None) -> Call[LogPage]:
        params = {"tail": tail} if tail is not None else {"offset": offset, "limit": limit}
        return Call("GET", _job_path(job, "/logs"), lambda r: LogPage.from_dict(r.json()),
                    params=params)

    @staticmethod
    def me() -> Call[Me]:
        return Call("GET", "/v1/me", lambda r: Me.from_dict(r.json()))

    @staticmethod
    def health() -> Call[dict[str, Any]]:
        return Call("GET", "/healthz", lambda r: r.json())

    @staticmethod
    def create_user(username: str, org: str, is_admin: bool) -> Call[User]:
        body = {"username": username, "org": org, "is_admin": is_admin}
        return Call("POST", "/v1/users", lambda r: User.from_dict(r.json()), json=body)

    @staticmethod
    def list_users() -> Call[list[User]]:
        return Call("GET", "/v1/users", lambda r: [User.from_dict(u) for u in _items(r)])

    @staticmethod
    def create_org(name: str) -> Call[Org]:
        return Call("POST", "/v1/orgs", lambda r: Org.from_dict(r.json()), json={"name": name})

    @staticmethod
    def list_orgs() -> Call[list[Org]]:
        return Call("GET", "/v1/orgs", lambda r: [Org.from_dict(o) for o in _items(r)])

    @staticmethod
    def create_key(name: str | None, username: str | None) -> Call[ApiKey]:
        body = _clean({"name": name, "username": username})
        return Call("POST", "/v1/keys", lambda r: ApiKey.from_dict(r.json()), json=body)

    @staticmethod
    def list_keys(username: str | None) -> Call[list[ApiKey]]:
        return Call("GET", "/v1/keys", lambda r: [ApiKey.from_dict(k) for k in _items(r)],
                    params=_clean({"username": username}))

    @staticmethod
    def revoke_key(key_id: int | str) -> Call[ApiKey]:
        return Call("DELETE", f"/v1/keys/{quote(str(key_id), safe='')}",
                    lambda r: ApiKey.from_dict(r.json()))


def _wait_delay(job: Job, delay: float, deadline: float | None) -> float:
    if deadline is None:
        return delay
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"job {job.id} is still {job.state}")
    return min(delay, remaining)


# --------------------------------------------------------------------------- SSE


class _SSEPlan(Generic[T]):
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


class _LogFollow(_SSEPlan[LogLine]):
    def __init__(self, job: JobRef, offset: int) -> None:
        super().__init__(_job_path(job, "/logs"))
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


class _EventFollow(_SSEPlan[Event]):
    def __init__(self, job: JobRef, last_event_id: str | None) -> None:
        super().__init__(_job_path(job, "/events"))
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


# --------------------------------------------------------------------------- clients


class _Base:
    def __init__(self, url: str | None, api_key: str | None, timeout: float) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.timeout = timeout

    def _http_options(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "headers": {
                "Authorization": f"Bearer {self.api_key}",
                "User-Agent": f"jobyard-sdk/{__version__}",
            },
            "timeout": self.timeout,
        }

    def _connection_failed(self, exc: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot reach Jobyard at {self.url}: {str(exc) or type(exc).__name__}",
            {"url": self.url},
        )

    def _stream_timeout(self) -> httpx.Timeout:
        # Long-lived SSE: a quiet stream reconnects (harmlessly) after a minute.
        return httpx.Timeout(self.timeout, read=max(self.timeout, 60.0))


# --------------------------------------------------------------------------- blocking


class Client(_Base):
    """Blocking client. ``Client(url=None, api_key=None, timeout=30)``; see module docs."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30):
        super().__init__(url, api_key, timeout)
        self._http = httpx.Client(**self._http_options())
        self.jobs = Jobs(self)
        self.users = Users(self)
        self.orgs = Orgs(self)
        self.keys = Keys(self)

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.json, headers=call.headers
            )
        except httpx.TransportError as exc:
            raise self._connection_failed(exc) from exc
        raise_for_response(response)
        return call.parse(response)

    def _sse(self, plan: _SSEPlan[T]) -> Iterator[T]:
        while not plan.done:
            params, headers = plan.request()
            try:
                with connect_sse(
                    self._http, "GET", plan.path, params=params, headers=headers,
                    timeout=self._stream_timeout(),
                ) as source:
                    if source.response.status_code >= 300:
                        source.response.read()
                    plan.check(source.response)
                    for sse in source.iter_sse():
                        item = plan.handle(sse)
                        if item is not None:
                            yield item
                        if plan.done:
                            return
                probe = plan.probe() if plan.idle else None
                if probe is not None and self._send(probe):
                    return
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            time.sleep(delay)

    def me(self) -> Me:
        """Who the API key belongs to."""
        return self._send(_Calls.me())

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (needs no key)."""
        return self._send(_Calls.health())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Jobs:
    """``client.jobs``: submit, inspect, follow and cancel jobs."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        """Submit ``command`` (a shell string or an argv list). Options: name, env, workdir,
        gpus, cpus, memory_mb, instance_type, priority, time_limit_s, retry (an int: max
        retries, or the API's dict), tags, idempotency_key."""
        return self._c._send(_Calls.submit(command, **options))

    def get(self, job_id: JobRef) -> Job:
        """One job, by ``job_...`` id or number."""
        return self._c._send(_Calls.get_job(job_id))

    def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first; pass ``page.next_cursor`` for the next one."""
        return self._c._send(_Calls.list_jobs(state, tag, name, limit, cursor))

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
        return self._c._send(_Calls.cancel(job_id))

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
        return self._c._send(_Calls.logs(job_id, offset, limit, tail))

    def _follow(self, job_id: JobRef, offset: int, tail: int | None) -> Iterator[LogLine]:
        if tail is not None:
            page = self.logs(job_id, tail=tail)
            yield from page.lines
            offset = page.next_offset
        yield from self._c._sse(_LogFollow(job_id, offset))

    def wait(self, job_id: JobRef, timeout: float | None = None) -> Job:
        """Poll until the job ends and return it; ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = WAIT_FIRST_DELAY_S
        while True:
            job = self.get(job_id)
            if job.is_terminal:
                return job
            time.sleep(_wait_delay(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events as they happen, resuming after a dropped connection;
        ends after the terminal event."""
        return self._c._sse(_EventFollow(job_id, last_event_id))


class Users:
    """``client.users`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return self._c._send(_Calls.create_user(username, org, is_admin))

    def list(self) -> list[User]:
        return self._c._send(_Calls.list_users())


class Orgs:
    """``client.orgs`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str) -> Org:
        return self._c._send(_Calls.create_org(name))

    def list(self) -> list[Org]:
        return self._c._send(_Calls.list_orgs())


class Keys:
    """``client.keys``: API keys. ``create`` is the only time a secret is returned."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return self._c._send(_Calls.create_key(name, username))

    def list(self, username: str | None = None) -> list[ApiKey]:
        return self._c._send(_Calls.list_keys(username))

    def revoke(self, key_id: int | str) -> ApiKey:
        """Revoke a key (own keys; any key for an admin); effective on the next request."""
        return self._c._send(_Calls.revoke_key(key_id))


# --------------------------------------------------------------------------- asyncio


class AsyncClient(_Base):
    """asyncio client with the same methods as :class:`Client` (awaitable, or async
    iterators for ``jobs.list``, ``jobs.logs(follow=True)`` and ``jobs.stream``)."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30):
        super().__init__(url, api_key, timeout)
        self._http = httpx.AsyncClient(**self._http_options())
        self.jobs = AsyncJobs(self)
        self.users = AsyncUsers(self)
        self.orgs = AsyncOrgs(self)
        self.keys = AsyncKeys(self)

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.json, headers=call.headers
            )
        except httpx.TransportError as exc:
            raise self._connection_failed(exc) from exc
        raise_for_response(response)
        return call.parse(response)

    async def _sse(self, plan: _SSEPlan[T]) -> AsyncIterator[T]:
        while not plan.done:
            params, headers = plan.request()
            try:
                async with aconnect_sse(
                    self._http, "GET", plan.path, params=params, headers=headers,
                    timeout=self._stream_timeout(),
                ) as source:
                    if source.response.status_code >= 300:
                        await source.response.aread()
                    plan.check(source.response)
                    async for sse in source.aiter_sse():
                        item = plan.handle(sse)
                        if item is not None:
                            yield item
                        if plan.done:
                            return
                probe = plan.probe() if plan.idle else None
                if probe is not None and await self._send(probe):
                    return
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            await asyncio.sleep(delay)

    async def me(self) -> Me:
        return await self._send(_Calls.me())

    async def health(self) -> dict[str, Any]:
        return await self._send(_Calls.health())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncJobs:
    """``AsyncClient.jobs``: see :class:`Jobs`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        return await self._c._send(_Calls.submit(command, **options))

    async def get(self, job_id: JobRef) -> Job:
        return await self._c._send(_Calls.get_job(job_id))

    async def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        return await self._c._send(_Calls.list_jobs(state, tag, name, limit, cursor))

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
        return await self._c._send(_Calls.cancel(job_id))

    async def _page(self, job_id: JobRef, offset: int, limit: int, tail: int | None) -> LogPage:
        return await self._c._send(_Calls.logs(job_id, offset, limit, tail))

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
        async for line in self._c._sse(_LogFollow(job_id, offset)):
            yield line

    async def wait(self, job_id: JobRef, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = WAIT_FIRST_DELAY_S
        while True:
            job = await self.get(job_id)
            if job.is_terminal:
                return job
            await asyncio.sleep(_wait_delay(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> AsyncIterator[Event]:
        return self._c._sse(_EventFollow(job_id, last_event_id))


class AsyncUsers:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return await self._c._send(_Calls.create_user(username, org, is_admin))

    async def list(self) -> list[User]:
        return await self._c._send(_Calls.list_users())


class AsyncOrgs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str) -> Org:
        return await self._c._send(_Calls.create_org(name))

    async def list(self) -> list[Org]:
        return await self._c._send(_Calls.list_orgs())


class AsyncKeys:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return await self._c._send(_Calls.create_key(name, username))

    async def list(self, username: str | None = None) -> list[ApiKey]:
        return await self._c._send(_Calls.list_keys(username))

    async def revoke(self, key_id: int | str) -> ApiKey:
        return await self._c._send(_Calls.revoke_key(key_id))

