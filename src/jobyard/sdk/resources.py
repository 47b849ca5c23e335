"""The blocking client's namespaces: ``client.jobs``, ``.users``, ``.orgs`` and ``.keys``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, Unpack, overload

from jobyard.sdk.calls import Calls, JobRef, SubmitOptions
from jobyard.sdk.models import ApiKey, Event, Job, LogLine, LogPage, Org, Page, User
from jobyard.sdk.sse import EventFollow, LogFollow

if TYPE_CHECKING:
    from jobyard.sdk.client import Client

__all__ = ["Jobs", "Keys", "Orgs", "Users"]

WAIT_FIRST_DELAY_S = 0.05
WAIT_MAX_DELAY_S = 2.0


def wait_delay(job: Job, delay: float, deadline: float | None) -> float:
    if deadline is None:
        return delay
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"timed out waiting for job {job.id} (still {job.state})")
    return min(delay, remaining)


class Jobs:
    """``client.jobs``: submit, inspect, follow and cancel jobs."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def submit(self, command: str | list[str], **options: Unpack[SubmitOptions]) -> Job:
        """Submit ``command`` (a shell string or an argv list). Options: name, env, workdir,
        gpus, cpus, memory_mb, instance_type, priority, time_limit_s, retry (an int: max
        retries, or the API's dict), tags, webhook (a URL, or ``{"url", "events"}``),
        idempotency_key."""
        return self._c._send(Calls.submit(command, **options))

    def get(self, job_id: JobRef) -> Job:
        """One job, by ``job_...`` id or number."""
        return self._c._send(Calls.get_job(job_id))

    def list_page(
        self, state: str | None = None, tag: str | None = None, name: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first; pass ``page.next_cursor`` for the next one."""
        return self._c._send(Calls.list_jobs(state, tag, name, limit, cursor))

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
        return self._c._send(Calls.cancel(job_id))

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
        return self._c._send(Calls.logs(job_id, offset, limit, tail))

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


class Users:
    """``client.users`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return self._c._send(Calls.create_user(username, org, is_admin))

    def list(self) -> list[User]:
        return self._c._send(Calls.list_users())


class Orgs:
    """``client.orgs`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str) -> Org:
        return self._c._send(Calls.create_org(name))

    def list(self) -> list[Org]:
        return self._c._send(Calls.list_orgs())


class Keys:
    """``client.keys``: API keys. ``create`` is the only time a secret is returned."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return self._c._send(Calls.create_key(name, username))

    def list(self, username: str | None = None) -> list[ApiKey]:
        return self._c._send(Calls.list_keys(username))

    def revoke(self, key_id: int | str) -> ApiKey:
        """Revoke a key (own keys; any key for an admin); effective on the next request."""
        return self._c._send(Calls.revoke_key(key_id))

