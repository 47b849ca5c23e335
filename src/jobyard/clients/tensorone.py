"""A Python client for TensorOne's job API, with the SDK surface of TensorOne's job-status page.
It speaks the same wire as ``/v2`` on a Jobyard server (and as TensorOne itself).

>>> from jobyard.clients.tensorone import TensorOneClient
>>> client = TensorOneClient(api_key="...", base_url="http://127.0.0.1:8750")
>>> status = client.jobs.get_status("job_...", include=["resources"])
>>> status.status, status.progress, status.current_step, status.resources.memory_usage
>>> statuses = client.jobs.get_batch_status(job_ids=[...], include=["metrics"])
>>> async for update in client.jobs.stream_status("job_..."):   # asyncio
...     print(update.progress, update.current_step)
>>> client.endpoints.run("ep_image_processor", {"images": 10}, priority="high").job_id

Results are :class:`Record`\\ s: attribute access in snake_case over the camelCase JSON
(``status.job_id`` reads ``jobId``); a field the answer does not carry reads as None. Error
answers raise :class:`TensorOneError` subclasses carrying the envelope's ``code``, ``message``
and ``details``.

``base_url`` defaults to ``$TENSORONE_BASE_URL``, else ``$JOBYARD_URL``, else
``https://api.tensorone.ai``; ``api_key`` to ``$TENSORONE_API_KEY``, else ``$JOBYARD_API_KEY``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse

__all__ = [
    "AccessDeniedError", "AuthenticationError", "BatchStatus", "InvalidRequestError",
    "JobStatus", "NotFoundError", "RateLimitError", "Record", "TensorOneClient",
    "TensorOneError",
]

DEFAULT_BASE_URL = "https://api.tensorone.ai"
TERMINAL = frozenset({"completed", "failed", "cancelled", "timeout"})
STREAM_RETRIES = 5  # reconnects in a row before a broken stream is given up


# results ----------------------------------------------------------------------------------------
_SNAKE = re.compile(r"_([a-z0-9])")


def _camel(name: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Record(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class Record:
    """A JSON object with attribute access: ``r.current_step`` reads ``currentStep`` (or
    ``current_step``); a missing field is None. ``r["currentStep"]`` and :meth:`to_dict`
    give the raw JSON."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]):
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        data = self._data
        for key in (name, _camel(name)):
            if key in data:
                return _wrap(data[key])
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        return _wrap(self._data.get(key, default))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return bool(self._data == other._data)
        return isinstance(other, dict) and bool(self._data == other)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def __str__(self) -> str:
        return str(self._data)


class JobStatus(Record):
    """A job's status (``GET /v2/jobs/{jobId}/status``)."""

    __slots__ = ()

    @property
    def is_terminal(self) -> bool:
        return self._data.get("status") in TERMINAL


class BatchStatus(list[JobStatus]):
    """The statuses of a batch, in the order asked (iterate it); the ids that could not be
    shown are in :attr:`errors` (``job_id``, ``error``, ``message``, ``details``)."""

    def __init__(self, statuses: Iterable[JobStatus], errors: Iterable[Record]):
        super().__init__(statuses)
        self.errors: list[Record] = list(errors)


# errors -----------------------------------------------------------------------------------------
class TensorOneError(Exception):
    """An error answer: ``status_code``, and the envelope's ``code``, ``message``, ``details``."""

    def __init__(self, status_code: int, code: str, message: str,
                 details: dict[str, Any] | None = None, headers: Any = None):
        super().__init__(f"{code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = Record(details or {})
        self.headers = dict(headers or {})


class InvalidRequestError(TensorOneError):
    pass


class AuthenticationError(TensorOneError):
    pass


class AccessDeniedError(TensorOneError):
    pass


class NotFoundError(TensorOneError):
    pass


class RateLimitError(TensorOneError):
    @property
    def retry_after(self) -> float | None:
        value = self.details.retry_after or self.headers.get("retry-after")
        return float(value) if value is not None else None


_BY_STATUS = {400: InvalidRequestError, 401: AuthenticationError, 403: AccessDeniedError,
              404: NotFoundError, 422: InvalidRequestError, 429: RateLimitError}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("error")
    if isinstance(code, dict):  # another server's envelope: {"error": {"code", "message"}}
        body, code = code, code.get("code")
    cls = _BY_STATUS.get(response.status_code, TensorOneError)
    raise cls(response.status_code, str(code or f"HTTP_{response.status_code}"),
              str(body.get("message") or response.reason_phrase), body.get("details"),
              response.headers)


def _include(include: Iterable[str] | str | None) -> dict[str, str]:
    if include is None:
        return {}
    names = [include] if isinstance(include, str) else list(include)
    return {"include": ",".join(names)} if names else {}


# namespaces -------------------------------------------------------------------------------------
class Jobs:
    """``client.jobs``: status checks."""

    def __init__(self, client: TensorOneClient):
        self._c = client

    def get_status(self, job_id: str, include: Iterable[str] | str | None = None,
                   format: str | None = None) -> JobStatus:
        """One job's status; ``include``: any of ``logs``, ``metrics``, ``resources``;
        ``format="summary"`` for the one-line form."""
        params = _include(include)
        if format is not None:
            params["format"] = format
        return JobStatus(self._c._request("GET", f"/v2/jobs/{job_id}/status", params=params))

    def get_batch_status(self, job_ids: Iterable[str],
                         include: Iterable[str] | str | None = None) -> BatchStatus:
        """Several jobs' statuses in one request (at most 100)."""
        body: dict[str, Any] = {"jobIds": list(job_ids)}
        if include is not None:
            body["include"] = [include] if isinstance(include, str) else list(include)
        data = self._c._request("POST", "/v2/jobs/status/batch", json=body)
        return BatchStatus((JobStatus(s) for s in data.get("jobs", [])),
                           (Record(e) for e in data.get("errors", [])))

    async def stream_status(self, job_id: str, include: Iterable[str] | str | None = None
                            ) -> AsyncIterator[JobStatus]:
        """Status updates as they happen (SSE), ending with the job's last status (completed,
        failed, cancelled or timeout). A dropped connection is resumed (``Last-Event-ID``).
        To stop before the end, wrap it in ``contextlib.aclosing`` so its connection closes
        at once."""
        last_id: str | None = None
        failures = 0
        final: JobStatus | None = None
        async with httpx.AsyncClient(**self._c._http_options(stream=True)) as http:
            while final is None:
                headers = {"Accept": "text/event-stream"}
                if last_id is not None:
                    headers["Last-Event-ID"] = last_id
                try:
                    async with aconnect_sse(http, "GET", f"/v2/jobs/{job_id}/status/stream",
                                            params=_include(include), headers=headers) as source:
                        if source.response.status_code >= 400:
                            await source.response.aread()
                            _raise_for(source.response)
                        async for sse in source.aiter_sse():
                            if sse.event != "status" or not sse.data:
                                continue  # heartbeats
                            failures = 0
                            last_id = sse.id or last_id
                            update = JobStatus(sse.json())
                            if update.is_terminal:
                                final = update
                                break
                            yield update
                except httpx.TransportError:
                    pass
                if final is not None:
                    break
                failures += 1
                if failures > STREAM_RETRIES:
                    raise TensorOneError(0, "STREAM_LOST", f"the status stream of {job_id} "
                                         f"was lost {failures} times in a row")
                await asyncio.sleep(min(0.5 * failures, 5.0))
        # The last update comes after the connection is closed: a caller that stops iterating
        # there (as the page's example does) leaves nothing open behind it.
        yield final


class Endpoints:
    """``client.endpoints``: run jobs of an endpoint (``ep_...``)."""

    def __init__(self, client: TensorOneClient):
        self._c = client

    @staticmethod
    def _body(input: Any, priority: str | None, tags: dict[str, str] | None,
              webhook: str | dict[str, Any] | None, timeout: float | None,
              retry: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"input": {} if input is None else input}
        for key, value in (("priority", priority), ("tags", tags), ("webhook", webhook),
                           ("timeout", timeout), ("retry", retry)):
            if value is not None:
                body[key] = value
        return body

    def run(self, endpoint_id: str, input: Any = None, *,
            priority: str | None = None, tags: dict[str, str] | None = None,
            webhook: str | dict[str, Any] | None = None, timeout: float | None = None,
            retry: dict[str, Any] | None = None) -> JobStatus:
        """Queue a job of the endpoint; returns ``{"jobId", "status"}``."""
        body = self._body(input, priority, tags, webhook, timeout, retry)
        return JobStatus(self._c._request("POST", f"/v2/endpoints/{endpoint_id}/run",
                                          json=body))

    def run_sync(self, endpoint_id: str, input: Any = None, *,
                 priority: str | None = None, tags: dict[str, str] | None = None,
                 webhook: str | dict[str, Any] | None = None, timeout: float | None = None,
                 retry: dict[str, Any] | None = None) -> JobStatus:
        """Run a job of the endpoint and wait (bounded by the server) for its status."""
        body = self._body(input, priority, tags, webhook, timeout, retry)
        return JobStatus(self._c._request("POST", f"/v2/endpoints/{endpoint_id}/runsync",
                                          json=body, long=True))

    runsync = run_sync


# the client ---------------------------------------------------------------------------------------
class TensorOneClient:
    """``TensorOneClient(api_key=None, base_url=None, timeout=30)``; see the module docs."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 30.0):
        self.api_key = (api_key or os.environ.get("TENSORONE_API_KEY")
                        or os.environ.get("JOBYARD_API_KEY"))
        if not self.api_key:
            raise ValueError("no API key: pass api_key= or set TENSORONE_API_KEY")
        self.base_url = (base_url or os.environ.get("TENSORONE_BASE_URL")
                         or os.environ.get("JOBYARD_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(**self._http_options())
        self.jobs = Jobs(self)
        self.endpoints = Endpoints(self)

    def _http_options(self, stream: bool = False) -> dict[str, Any]:
        timeout = (httpx.Timeout(self.timeout, read=max(self.timeout, 60.0)) if stream
                   else self.timeout)
        return {"base_url": self.base_url, "timeout": timeout,
                "headers": {"Authorization": f"Bearer {self.api_key}",
                            "Content-Type": "application/json"}}

    def _request(self, method: str, path: str, long: bool = False, **kwargs: Any) -> Any:
        if long:  # runsync: the server may wait for minutes
            kwargs["timeout"] = httpx.Timeout(self.timeout, read=None)
        response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        return response.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TensorOneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
