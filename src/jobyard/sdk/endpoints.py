"""Endpoints in the SDK: ``client.endpoints`` (blocking and asyncio) — named job templates
(TensorOne's ``ep_<name>``) that jobs run against with an input.

>>> ep = client.endpoints.create("resize", ["python", "resize.py"], gpus=1)
>>> ep.id
'ep_resize'

Runs go through the TensorOne API (``POST /v2/endpoints/ep_resize/run``, or
:class:`jobyard.clients.tensorone.TensorOneClient`'s ``endpoints.run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobyard.sdk.calls import Call, segment
from jobyard.sdk.models import _Model

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["AsyncEndpoints", "Endpoint", "EndpointCalls", "Endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoint(_Model):
    id: str
    name: str
    command: str | list[str]
    env: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None
    owner: dict[str, Any] | None = None
    run_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _path(uid: str) -> str:
    return f"/v1/endpoints/{segment(uid)}"


class EndpointCalls:
    """Request building and answer parsing for /v1/endpoints."""

    @staticmethod
    def create(name: str, command: str | list[str], env: dict[str, str] | None, gpus: int,
               cpus: float, memory_mb: int, time_limit_s: float | None) -> Call[Endpoint]:
        body: dict[str, Any] = {
            "name": name, "command": command, "env": env or {},
            "resources": {"gpus": gpus, "cpus": cpus, "memory_mb": memory_mb},
        }
        if time_limit_s is not None:
            body["time_limit_s"] = time_limit_s
        return Call("POST", "/v1/endpoints", lambda r: Endpoint.from_dict(r.json()), json=body)

    @staticmethod
    def list() -> Call[list[Endpoint]]:
        return Call("GET", "/v1/endpoints",
                    lambda r: [Endpoint.from_dict(e) for e in r.json()["items"]])

    @staticmethod
    def get(uid: str) -> Call[Endpoint]:
        return Call("GET", _path(uid), lambda r: Endpoint.from_dict(r.json()))

    @staticmethod
    def delete(uid: str) -> Call[bool]:
        return Call("DELETE", _path(uid), lambda r: bool(r.json().get("deleted")))


class Endpoints:
    """``client.endpoints``: create, list, get, delete."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, command: str | list[str], *, env: dict[str, str] | None = None,
               gpus: int = 0, cpus: float = 1.0, memory_mb: int = 0,
               time_limit_s: float | None = None) -> Endpoint:
        return self._c._send(EndpointCalls.create(name, command, env, gpus, cpus, memory_mb,
                                                  time_limit_s))

    def list(self) -> list[Endpoint]:
        return self._c._send(EndpointCalls.list())

    def get(self, uid: str) -> Endpoint:
        return self._c._send(EndpointCalls.get(uid))

    def delete(self, uid: str) -> bool:
        return self._c._send(EndpointCalls.delete(uid))


class AsyncEndpoints:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, command: str | list[str], *,
                     env: dict[str, str] | None = None, gpus: int = 0, cpus: float = 1.0,
                     memory_mb: int = 0, time_limit_s: float | None = None) -> Endpoint:
        return await self._c._send(EndpointCalls.create(name, command, env, gpus, cpus,
                                                        memory_mb, time_limit_s))

    async def list(self) -> list[Endpoint]:
        return await self._c._send(EndpointCalls.list())

    async def get(self, uid: str) -> Endpoint:
        return await self._c._send(EndpointCalls.get(uid))

    async def delete(self, uid: str) -> bool:
        return await self._c._send(EndpointCalls.delete(uid))
