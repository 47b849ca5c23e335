"""The asyncio client's namespaces: ``AsyncClient.jobs``, ``.users``, ``.orgs`` and ``.keys``
(the same methods as :mod:`jobyard.sdk.resources`, awaitable or async iterators)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from jobyard.sdk.calls import Calls, JobRef, SubmitOptions
from jobyard.sdk.models import ApiKey, Event, Job, LogLine, LogPage, Org, Page, User
from jobyard.sdk.resources import WAIT_FIRST_DELAY_S, WAIT_MAX_DELAY_S, wait_delay
from jobyard.sdk.sse import EventFollow, LogFollow

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient

__all__ = ["AsyncJobs", "AsyncKeys", "AsyncOrgs", "AsyncUsers"]


class AsyncJobs:
    """``AsyncClient.jobs``: see :class:`Jobs`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        return await self._c._send(Calls.submit(command, **options))

    async def get(self, job_id: JobRef) -> Job:
        return await self._c._send(Calls.get_job(job_id))

    async def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        return await self._c._send(Calls.list_jobs(state, tag, name, limit, cursor))

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
        return await self._c._send(Calls.cancel(job_id))

    async def _page(self, job_id: JobRef, offset: int, limit: int, tail: int | None) -> LogPage:
        return await self._c._send(Calls.logs(job_id, offset, limit, tail))

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


class AsyncUsers:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return await self._c._send(Calls.create_user(username, org, is_admin))

    async def list(self) -> list[User]:
        return await self._c._send(Calls.list_users())


class AsyncOrgs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str) -> Org:
        return await self._c._send(Calls.create_org(name))

    async def list(self) -> list[Org]:
        return await self._c._send(Calls.list_orgs())


class AsyncKeys:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return await self._c._send(Calls.create_key(name, username))

    async def list(self, username: str | None = None) -> list[ApiKey]:
        return await self._c._send(Calls.list_keys(username))

    async def revoke(self, key_id: int | str) -> ApiKey:
        return await self._c._send(Calls.revoke_key(key_id))

