"""The Python SDK: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

>>> from jobyard import Client
>>> with Client() as client:                       # URL and key: args, env, or `jobyard login`
...     job = client.jobs.submit(["python", "train.py"], gpus=1)
...     for line in client.jobs.logs(job.id, follow=True):
...         print(line.text)
...     job = client.jobs.wait(job.id)

Both clients share every request's building and parsing (:mod:`jobyard.sdk.calls`-style
``_Call`` objects below); each one only runs them over its own httpx client.
Errors are the classes of :mod:`jobyard.errors`; a server that cannot be reached raises
:class:`ConnectionFailed` naming the URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, TypeVar, Unpack, overload

import httpx
from httpx_sse import aconnect_sse, connect_sse

from jobyard.errors import JobyardError
from jobyard.sdk import calls
from jobyard.sdk.calls import (
    Call,
    ConnectionFailed,
    EventFollow,
    JobRef,
    LogFollow,
    SSEPlan,
    SubmitOptions,
    raise_for_response,
)
from jobyard.sdk.models import ApiKey, Event, Job, LogLine, LogPage, Me, Org, Page, User
from jobyard.sdk.settings import resolve

__all__ = ["AsyncClient", "Client", "ConnectionFailed", "SubmitOptions"]

T = TypeVar("T")

WAIT_FIRST_DELAY_S = 0.05
WAIT_MAX_DELAY_S = 2.0


class _Base:
    def __init__(self, url: str | None, api_key: str | None, timeout: float) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.timeout = timeout

    def _http_options(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "headers": calls.default_headers(self.api_key),
            "timeout": self.timeout,
        }

    def _connection_failed(self, exc: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot reach Jobyard at {self.url}: {exc or type(exc).__name__}",
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

    def _sse(self, plan: SSEPlan[T]) -> Iterator[T]:
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
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            time.sleep(delay)

    def me(self) -> Me:
        """Who the API key belongs to."""
        return self._send(calls.me())

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (needs no key)."""
        return self._send(calls.health())

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
        return self._c._send(calls.submit(command, **options))

    def get(self, job_id: JobRef) -> Job:
        """One job, by ``job_...`` id or number."""
        return self._c._send(calls.get_job(job_id))

    def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first; pass ``page.next_cursor`` for the next one."""
        return self._c._send(calls.list_jobs(state, tag, name, limit, cursor))

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
        return self._c._send(calls.cancel(job_id))

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
        return self._c._send(calls.logs(job_id, offset, limit, tail))

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
            time.sleep(calls.next_sleep(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events as they happen, resuming after a dropped connection;
        ends after the terminal event."""
        return self._c._sse(EventFollow(job_id, last_event_id))


class Users:
    """``client.users`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return self._c._send(calls.create_user(username, org, is_admin))

    def list(self) -> list[User]:
        return self._c._send(calls.list_users())


class Orgs:
    """``client.orgs`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str) -> Org:
        return self._c._send(calls.create_org(name))

    def list(self) -> list[Org]:
        return self._c._send(calls.list_orgs())


class Keys:
    """``client.keys``: API keys. ``create`` is the only time a secret is returned."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return self._c._send(calls.create_key(name, username))

    def list(self, username: str | None = None) -> list[ApiKey]:
        return self._c._send(calls.list_keys(username))

    def revoke(self, key_id: int | str) -> None:
        return self._c._send(calls.revoke_key(key_id))


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

    async def _sse(self, plan: SSEPlan[T]) -> AsyncIterator[T]:
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
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            await asyncio.sleep(delay)

    async def me(self) -> Me:
        return await self._send(calls.me())

    async def health(self) -> dict[str, Any]:
        return await self._send(calls.health())

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
        return await self._c._send(calls.submit(command, **options))

    async def get(self, job_id: JobRef) -> Job:
        return await self._c._send(calls.get_job(job_id))

    async def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        return await self._c._send(calls.list_jobs(state, tag, name, limit, cursor))

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
        return await self._c._send(calls.cancel(job_id))

    async def _page(self, job_id: JobRef, offset: int, limit: int, tail: int | None) -> LogPage:
        return await self._c._send(calls.logs(job_id, offset, limit, tail))

    @overload
    def logs(
        self, job_id: JobRef, offset: int = 0, limit: int = 1000, tail: int | None = None,
        *, follow: Literal[False] = False,
    ) -> asyncio.Future[LogPage]: ...
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

    async def _follow(self, job_id: JobRef, offset: int, tail: int | None) -> AsyncIterator[LogLine]:
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
            await asyncio.sleep(calls.next_sleep(job, delay, deadline))
            delay = min(delay * 2, WAIT_MAX_DELAY_S)

    def stream(self, job_id: JobRef, last_event_id: str | None = None) -> AsyncIterator[Event]:
        return self._c._sse(EventFollow(job_id, last_event_id))


class AsyncUsers:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return await self._c._send(calls.create_user(username, org, is_admin))

    async def list(self) -> list[User]:
        return await self._c._send(calls.list_users())


class AsyncOrgs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str) -> Org:
        return await self._c._send(calls.create_org(name))

    async def list(self) -> list[Org]:
        return await self._c._send(calls.list_orgs())


class AsyncKeys:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return await self._c._send(calls.create_key(name, username))

    async def list(self, username: str | None = None) -> list[ApiKey]:
        return await self._c._send(calls.list_keys(username))

    async def revoke(self, key_id: int | str) -> None:
        return await self._c._send(calls.revoke_key(key_id))


_ = JobyardError  # re-exported for `from jobyard.sdk.client import *` users' convenience
