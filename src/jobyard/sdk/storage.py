"""Storage volumes and async requests in the SDK: ``client.storage`` and ``client.requests``
(blocking and asyncio namespaces sharing one set of :class:`StorageCalls`).

>>> accepted = client.storage.create("datasets", size_gb=100)
>>> done = client.requests.wait(accepted.request_id)      # polls, honouring Retry-After
>>> client.storage.get(accepted.storage_id).used_bytes
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from jobyard.sdk.calls import Call
from jobyard.sdk.models import _Model

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["Accepted", "AsyncRequests", "AsyncStorage", "Request", "Requests", "Storage",
           "StorageCalls", "Volume"]

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
DEFAULT_POLL_S = 2  # when an answer has no usable Retry-After


@dataclass(frozen=True, slots=True)
class Volume(_Model):
    id: str
    name: str
    state: str
    size_gb: int
    size_bytes: int
    used_bytes: int | None = None
    over_quota: bool = False
    attachments: list[str] = field(default_factory=list)
    used_checked_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Request(_Model):
    """An async request. ``retry_after``: the server's advice (seconds) while not terminal."""

    id: str
    type: str
    status: str
    object_id: str | None = None
    external_message: str | None = None
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None
    retry_after: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Accepted:
    """A 202: the request that will carry the change out, and the volume it is about."""

    request_id: str
    storage_id: str
    request: Request


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    return int(value) if value and value.isdigit() else None


def _parse_request(response: httpx.Response) -> Request:
    return Request.from_dict({**response.json(), "retry_after": _retry_after(response)})


def _parse_accepted(response: httpx.Response) -> Accepted:
    body = response.json()
    return Accepted(body["request_id"], body["storage_id"], Request.from_dict(body["request"]))


def _volume_path(uid: str) -> str:
    return f"/v1/storage/{quote(uid, safe='')}"


class StorageCalls:
    """Request building and answer parsing for /v1/storage and /v1/requests."""

    @staticmethod
    def create(name: str, size_gb: int) -> Call[Accepted]:
        return Call("POST", "/v1/storage", _parse_accepted,
                    json={"name": name, "size_gb": size_gb})

    @staticmethod
    def list() -> Call[list[Volume]]:
        return Call("GET", "/v1/storage",
                    lambda r: [Volume.from_dict(v) for v in r.json()["items"]])

    @staticmethod
    def get(uid: str) -> Call[Volume]:
        return Call("GET", _volume_path(uid), lambda r: Volume.from_dict(r.json()))

    @staticmethod
    def edit(uid: str, name: str | None, size_gb: int | None) -> Call[Accepted]:
        body = {k: v for k, v in {"name": name, "size_gb": size_gb}.items() if v is not None}
        return Call("PATCH", _volume_path(uid), _parse_accepted, json=body)

    @staticmethod
    def destroy(uid: str) -> Call[Accepted]:
        return Call("DELETE", _volume_path(uid), _parse_accepted)

    @staticmethod
    def attach(uid: str, cluster_id: str, detach: bool = False) -> Call[Accepted]:
        verb = "detach" if detach else "attach"
        return Call("POST", f"{_volume_path(uid)}/{verb}", _parse_accepted,
                    json={"cluster_id": cluster_id})

    @staticmethod
    def get_request(uid: str) -> Call[Request]:
        return Call("GET", f"/v1/requests/{quote(uid, safe='')}", _parse_request)

    @staticmethod
    def list_requests(limit: int) -> Call[list[Request]]:
        return Call("GET", "/v1/requests",
                    lambda r: [Request.from_dict(x) for x in r.json()["items"]],
                    params={"limit": limit})


def _next_delay(req: Request, deadline: float | None) -> float:
    delay = float(max(1, DEFAULT_POLL_S if req.retry_after is None else req.retry_after))
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out waiting for request {req.id} (still {req.status})")
        delay = min(delay, remaining)
    return delay


class Storage:
    """``client.storage``: volumes. Mutations return :class:`Accepted` (see ``requests``)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, size_gb: int) -> Accepted:
        return self._c._send(StorageCalls.create(name, size_gb))

    def list(self) -> list[Volume]:
        return self._c._send(StorageCalls.list())

    def get(self, uid: str) -> Volume:
        return self._c._send(StorageCalls.get(uid))

    def edit(self, uid: str, name: str | None = None, size_gb: int | None = None) -> Accepted:
        """Rename and/or grow (shrinking is refused)."""
        return self._c._send(StorageCalls.edit(uid, name, size_gb))

    def destroy(self, uid: str) -> Accepted:
        return self._c._send(StorageCalls.destroy(uid))

    def attach(self, uid: str, cluster_id: str) -> Accepted:
        return self._c._send(StorageCalls.attach(uid, cluster_id))

    def detach(self, uid: str, cluster_id: str) -> Accepted:
        return self._c._send(StorageCalls.attach(uid, cluster_id, detach=True))


class Requests:
    """``client.requests``: async requests."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def get(self, uid: str) -> Request:
        return self._c._send(StorageCalls.get_request(uid))

    def list(self, limit: int = 50) -> list[Request]:
        return self._c._send(StorageCalls.list_requests(limit))

    def wait(self, uid: str, timeout: float | None = None) -> Request:
        """Poll until COMPLETED or FAILED, sleeping as ``Retry-After`` says (min 1 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (req := self.get(uid)).done:
            time.sleep(_next_delay(req, deadline))
        return req


class AsyncStorage:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, size_gb: int) -> Accepted:
        return await self._c._send(StorageCalls.create(name, size_gb))

    async def list(self) -> list[Volume]:
        return await self._c._send(StorageCalls.list())

    async def get(self, uid: str) -> Volume:
        return await self._c._send(StorageCalls.get(uid))

    async def edit(self, uid: str, name: str | None = None,
                   size_gb: int | None = None) -> Accepted:
        return await self._c._send(StorageCalls.edit(uid, name, size_gb))

    async def destroy(self, uid: str) -> Accepted:
        return await self._c._send(StorageCalls.destroy(uid))

    async def attach(self, uid: str, cluster_id: str) -> Accepted:
        return await self._c._send(StorageCalls.attach(uid, cluster_id))

    async def detach(self, uid: str, cluster_id: str) -> Accepted:
        return await self._c._send(StorageCalls.attach(uid, cluster_id, detach=True))


class AsyncRequests:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def get(self, uid: str) -> Request:
        return await self._c._send(StorageCalls.get_request(uid))

    async def list(self, limit: int = 50) -> list[Request]:
        return await self._c._send(StorageCalls.list_requests(limit))

    async def wait(self, uid: str, timeout: float | None = None) -> Request:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (req := await self.get(uid)).done:
            await asyncio.sleep(_next_delay(req, deadline))
        return req
