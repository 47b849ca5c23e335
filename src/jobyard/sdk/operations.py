"""Operations in the SDK: ``client.operations`` (blocking and asyncio; ``client.requests`` is
its older name). An operation is a long change the server carries out after answering 202 —
claiming a cluster, creating or attaching a volume — which you poll until it is COMPLETED or
FAILED.

On the wire an operation is an *async request*: ``/v1/requests/{id}``, and a 202 names it
``request_id``. The SDK calls it an operation so that "request" keeps meaning an HTTP request.

>>> accepted = client.volumes.create("datasets", size_gb=100)
>>> client.operations.wait(accepted.request_id).status      # polls, honouring Retry-After
'COMPLETED'
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from jobyard.sdk.calls import Call, segment
from jobyard.sdk.models import _Model

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["TERMINAL_STATUSES", "AsyncOperations", "Operation", "OperationCalls", "Operations"]

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
DEFAULT_POLL_S = 2  # when an answer has no usable Retry-After


@dataclass(frozen=True, slots=True)
class Operation(_Model):
    """An operation (the API's async request). ``retry_after``: the server's advice (seconds)
    while not terminal."""

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


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    return int(value) if value and value.isdigit() else None


def _parse_operation(response: httpx.Response) -> Operation:
    return Operation.from_dict({**response.json(), "retry_after": _retry_after(response)})


class OperationCalls:
    """Request building and answer parsing for /v1/requests."""

    @staticmethod
    def get(uid: str) -> Call[Operation]:
        return Call("GET", f"/v1/requests/{segment(uid)}", _parse_operation)

    @staticmethod
    def list(limit: int) -> Call[list[Operation]]:
        return Call("GET", "/v1/requests",
                    lambda r: [Operation.from_dict(x) for x in r.json()["items"]],
                    params={"limit": limit})


def _next_delay(op: Operation, deadline: float | None) -> float:
    delay = float(max(1, DEFAULT_POLL_S if op.retry_after is None else op.retry_after))
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out waiting for request {op.id} (still {op.status})")
        delay = min(delay, remaining)
    return delay


class Operations:
    """``client.operations`` (also ``client.requests``): get, list, and wait for one."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def get(self, uid: str) -> Operation:
        return self._c._send(OperationCalls.get(uid))

    def list(self, limit: int = 50) -> list[Operation]:
        """Your org's operations, newest first."""
        return self._c._send(OperationCalls.list(limit))

    def wait(self, uid: str, timeout: float | None = None) -> Operation:
        """Poll until COMPLETED or FAILED, sleeping as ``Retry-After`` says (min 1 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (op := self.get(uid)).done:
            time.sleep(_next_delay(op, deadline))
        return op


class AsyncOperations:
    """``AsyncClient.operations`` (also ``.requests``): see :class:`Operations`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def get(self, uid: str) -> Operation:
        return await self._c._send(OperationCalls.get(uid))

    async def list(self, limit: int = 50) -> list[Operation]:
        return await self._c._send(OperationCalls.list(limit))

    async def wait(self, uid: str, timeout: float | None = None) -> Operation:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (op := await self.get(uid)).done:
            await asyncio.sleep(_next_delay(op, deadline))
        return op
