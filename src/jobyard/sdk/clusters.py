"""Clusters in the SDK: ``client.clusters`` (blocking and asyncio). Every change is an
operation (:mod:`jobyard.sdk.operations`): the answer is a :class:`ClusterAccepted`; wait for it
with ``client.operations.wait``. Volumes are attached from ``client.volumes``.

>>> accepted = client.clusters.claim("1xGPU", count=2, name="train")
>>> client.operations.wait(accepted.request_id).status
'COMPLETED'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from jobyard.sdk.calls import Call, segment
from jobyard.sdk.models import _Model
from jobyard.sdk.operations import Operation

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["AsyncClusters", "Cluster", "ClusterAccepted", "ClusterCalls", "Clusters"]


@dataclass(frozen=True, slots=True)
class Cluster(_Model):
    id: str
    name: str
    state: str
    instance_type: str
    instance_count: int
    gpus: int = 0
    instances: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ClusterAccepted:
    """A 202: the operation that carries the change out (``request``, as the JSON names it),
    and the cluster it is about."""

    request_id: str
    cluster_id: str
    request: Operation


def _accepted(response: httpx.Response) -> ClusterAccepted:
    body = response.json()
    return ClusterAccepted(body["request_id"], body["cluster_id"],
                           Operation.from_dict(body["request"]))


def _path(uid: str) -> str:
    return f"/v1/clusters/{segment(uid)}"


class ClusterCalls:
    """Request building and answer parsing for /v1/clusters."""

    @staticmethod
    def claim(instance_type: str, count: int, name: str | None) -> Call[ClusterAccepted]:
        body = {"instance_type": instance_type, "instance_count": count}
        if name is not None:
            body["name"] = name
        return Call("POST", "/v1/clusters", _accepted, json=body)

    @staticmethod
    def list() -> Call[list[Cluster]]:
        return Call("GET", "/v1/clusters",
                    lambda r: [Cluster.from_dict(c) for c in r.json()["items"]])

    @staticmethod
    def get(uid: str) -> Call[Cluster]:
        return Call("GET", _path(uid), lambda r: Cluster.from_dict(r.json()))

    @staticmethod
    def edit(uid: str, name: str | None, count: int | None) -> Call[ClusterAccepted]:
        body = {k: v for k, v in {"name": name, "instance_count": count}.items()
                if v is not None}
        return Call("PATCH", _path(uid), _accepted, json=body)

    @staticmethod
    def release(uid: str) -> Call[ClusterAccepted]:
        return Call("DELETE", _path(uid), _accepted)


class Clusters:
    """``client.clusters``: claim, list, get, edit (rename/resize), release."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def claim(self, instance_type: str, count: int = 1,
              name: str | None = None) -> ClusterAccepted:
        return self._c._send(ClusterCalls.claim(instance_type, count, name))

    def list(self) -> list[Cluster]:
        return self._c._send(ClusterCalls.list())

    def get(self, uid: str) -> Cluster:
        return self._c._send(ClusterCalls.get(uid))

    def edit(self, uid: str, name: str | None = None,
             count: int | None = None) -> ClusterAccepted:
        return self._c._send(ClusterCalls.edit(uid, name, count))

    def release(self, uid: str) -> ClusterAccepted:
        return self._c._send(ClusterCalls.release(uid))


class AsyncClusters:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def claim(self, instance_type: str, count: int = 1,
                    name: str | None = None) -> ClusterAccepted:
        return await self._c._send(ClusterCalls.claim(instance_type, count, name))

    async def list(self) -> list[Cluster]:
        return await self._c._send(ClusterCalls.list())

    async def get(self, uid: str) -> Cluster:
        return await self._c._send(ClusterCalls.get(uid))

    async def edit(self, uid: str, name: str | None = None,
                   count: int | None = None) -> ClusterAccepted:
        return await self._c._send(ClusterCalls.edit(uid, name, count))

    async def release(self, uid: str) -> ClusterAccepted:
        return await self._c._send(ClusterCalls.release(uid))
