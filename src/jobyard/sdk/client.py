"""The Python SDK: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

>>> from jobyard import Client
>>> with Client() as client:                       # URL and key: args, env, or `jobyard login`
...     job = client.jobs.submit(["python", "train.py"], gpus=1)
...     for line in client.jobs.logs(job.id, follow=True):
...         print(line.text)
...     job = client.jobs.wait(job.id)

One module per resource holds its models, its ``...Calls`` (each request built and its answer
parsed once, as a :class:`~jobyard.sdk.calls.Call`), its blocking namespace and its asyncio
twin: :mod:`jobyard.sdk.jobs` (``jobs``), :mod:`jobyard.sdk.accounts` (``users``, ``orgs``,
``keys``, ``me()``), :mod:`jobyard.sdk.volumes` (``volumes``), :mod:`jobyard.sdk.operations`
(``operations``), :mod:`jobyard.sdk.clusters`, :mod:`jobyard.sdk.endpoints` and
:mod:`jobyard.sdk.packages` (``packages``, ``schedules``). The two clients only run calls over
their own httpx client; :mod:`jobyard.sdk.calls` is the machinery they share, and resumable SSE
streams are driven by the plans of :mod:`jobyard.sdk.sse`.

``volumes`` and ``operations`` are what the API calls storage and (async) requests
(``/v1/storage``, ``/v1/requests``); ``client.storage`` and ``client.requests`` are their older
names, kept as aliases of the same objects.

Errors are the classes of :mod:`jobyard.errors`; a server that cannot be reached raises
:class:`~jobyard.errors.ConnectionFailed`, naming the URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import httpx
from httpx_sse import aconnect_sse, connect_sse

from jobyard import __version__
from jobyard.errors import ConnectionFailed
from jobyard.sdk.accounts import (
    AsyncKeys,
    AsyncOrgs,
    AsyncUsers,
    Keys,
    Me,
    Orgs,
    UserCalls,
    Users,
)
from jobyard.sdk.calls import Call, Calls, raise_for_response
from jobyard.sdk.clusters import AsyncClusters, Clusters
from jobyard.sdk.endpoints import AsyncEndpoints, Endpoints
from jobyard.sdk.jobs import AsyncJobs, JobRef, Jobs, SubmitOptions
from jobyard.sdk.operations import AsyncOperations, Operations
from jobyard.sdk.packages import AsyncPackages, AsyncSchedules, Packages, Schedules
from jobyard.sdk.settings import resolve
from jobyard.sdk.sse import SSEPlan
from jobyard.sdk.volumes import AsyncVolumes, Volumes

# ConnectionFailed, JobRef and SubmitOptions are re-exported for older imports from here.
__all__ = ["AsyncClient", "Client", "ConnectionFailed", "JobRef", "SubmitOptions"]

T = TypeVar("T")


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
    """Blocking client. ``Client(url=None, api_key=None, timeout=30)``; see module docs.

    Namespaces: ``jobs``, ``users``, ``orgs``, ``keys``, ``volumes``, ``operations``,
    ``clusters``, ``endpoints``, ``packages``, ``schedules``; ``storage`` and ``requests`` are
    the older names of ``volumes`` and ``operations`` (the same objects).
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30):
        super().__init__(url, api_key, timeout)
        self._http = httpx.Client(**self._http_options())
        self.jobs = Jobs(self)
        self.users = Users(self)
        self.orgs = Orgs(self)
        self.keys = Keys(self)
        self.volumes = Volumes(self)
        self.operations = Operations(self)
        self.clusters = Clusters(self)
        self.endpoints = Endpoints(self)
        self.packages = Packages(self)
        self.schedules = Schedules(self)
        self.storage = self.volumes  # the older name
        self.requests = self.operations  # the older name

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
                probe = plan.probe() if plan.idle else None
                if probe is not None and self._send(probe):
                    return
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            time.sleep(delay)

    def me(self) -> Me:
        """Who the API key belongs to."""
        return self._send(UserCalls.me())

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (needs no key)."""
        return self._send(Calls.health())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        self.volumes = AsyncVolumes(self)
        self.operations = AsyncOperations(self)
        self.clusters = AsyncClusters(self)
        self.endpoints = AsyncEndpoints(self)
        self.packages = AsyncPackages(self)
        self.schedules = AsyncSchedules(self)
        self.storage = self.volumes  # the older name
        self.requests = self.operations  # the older name

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
                probe = plan.probe() if plan.idle else None
                if probe is not None and await self._send(probe):
                    return
                delay = plan.lost(None, self.url)
            except httpx.TransportError as exc:
                delay = plan.lost(exc, self.url)
            await asyncio.sleep(delay)

    async def me(self) -> Me:
        return await self._send(UserCalls.me())

    async def health(self) -> dict[str, Any]:
        return await self._send(Calls.health())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
