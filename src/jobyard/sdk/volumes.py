"""Volumes in the SDK: ``client.volumes`` (blocking and asyncio; ``client.storage`` is its older
name). A volume is a directory on the server of at most ``size_gb``, attachable to clusters.

On the wire volumes are *storage*: ``/v1/storage/{id}``, and a 202 names the volume
``storage_id``. Every change is an operation (:mod:`jobyard.sdk.operations`): the answer is a
:class:`VolumeAccepted`; wait for it with ``client.operations.wait``.

>>> accepted = client.volumes.create("datasets", size_gb=100)
>>> done = client.operations.wait(accepted.request_id)      # polls, honouring Retry-After
>>> client.volumes.get(accepted.storage_id).used_bytes
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

__all__ = ["AsyncVolumes", "Volume", "VolumeAccepted", "VolumeCalls", "Volumes"]


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
class VolumeAccepted:
    """A 202: the operation that carries the change out (``request``, as the JSON names it),
    and the volume it is about (``storage_id``)."""

    request_id: str
    storage_id: str
    request: Operation


def _accepted(response: httpx.Response) -> VolumeAccepted:
    body = response.json()
    return VolumeAccepted(body["request_id"], body["storage_id"],
                          Operation.from_dict(body["request"]))


def _path(uid: str) -> str:
    return f"/v1/storage/{segment(uid)}"


class VolumeCalls:
    """Request building and answer parsing for /v1/storage."""

    @staticmethod
    def create(name: str, size_gb: int) -> Call[VolumeAccepted]:
        return Call("POST", "/v1/storage", _accepted, json={"name": name, "size_gb": size_gb})

    @staticmethod
    def list() -> Call[list[Volume]]:
        return Call("GET", "/v1/storage",
                    lambda r: [Volume.from_dict(v) for v in r.json()["items"]])

    @staticmethod
    def get(uid: str) -> Call[Volume]:
        return Call("GET", _path(uid), lambda r: Volume.from_dict(r.json()))

    @staticmethod
    def edit(uid: str, name: str | None, size_gb: int | None) -> Call[VolumeAccepted]:
        body = {k: v for k, v in {"name": name, "size_gb": size_gb}.items() if v is not None}
        return Call("PATCH", _path(uid), _accepted, json=body)

    @staticmethod
    def destroy(uid: str) -> Call[VolumeAccepted]:
        return Call("DELETE", _path(uid), _accepted)

    @staticmethod
    def attach(uid: str, cluster_id: str, detach: bool = False) -> Call[VolumeAccepted]:
        verb = "detach" if detach else "attach"
        return Call("POST", f"{_path(uid)}/{verb}", _accepted, json={"cluster_id": cluster_id})


class Volumes:
    """``client.volumes`` (also ``client.storage``). Changes return :class:`VolumeAccepted`
    (see ``client.operations``)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str, size_gb: int) -> VolumeAccepted:
        return self._c._send(VolumeCalls.create(name, size_gb))

    def list(self) -> list[Volume]:
        return self._c._send(VolumeCalls.list())

    def get(self, uid: str) -> Volume:
        return self._c._send(VolumeCalls.get(uid))

    def edit(self, uid: str, name: str | None = None,
             size_gb: int | None = None) -> VolumeAccepted:
        """Rename and/or grow (shrinking is refused)."""
        return self._c._send(VolumeCalls.edit(uid, name, size_gb))

    def destroy(self, uid: str) -> VolumeAccepted:
        return self._c._send(VolumeCalls.destroy(uid))

    def attach(self, uid: str, cluster_id: str) -> VolumeAccepted:
        return self._c._send(VolumeCalls.attach(uid, cluster_id))

    def detach(self, uid: str, cluster_id: str) -> VolumeAccepted:
        return self._c._send(VolumeCalls.attach(uid, cluster_id, detach=True))


class AsyncVolumes:
    """``AsyncClient.volumes`` (also ``.storage``): see :class:`Volumes`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, size_gb: int) -> VolumeAccepted:
        return await self._c._send(VolumeCalls.create(name, size_gb))

    async def list(self) -> list[Volume]:
        return await self._c._send(VolumeCalls.list())

    async def get(self, uid: str) -> Volume:
        return await self._c._send(VolumeCalls.get(uid))

    async def edit(self, uid: str, name: str | None = None,
                   size_gb: int | None = None) -> VolumeAccepted:
        return await self._c._send(VolumeCalls.edit(uid, name, size_gb))

    async def destroy(self, uid: str) -> VolumeAccepted:
        return await self._c._send(VolumeCalls.destroy(uid))

    async def attach(self, uid: str, cluster_id: str) -> VolumeAccepted:
        return await self._c._send(VolumeCalls.attach(uid, cluster_id))

    async def detach(self, uid: str, cluster_id: str) -> VolumeAccepted:
        return await self._c._send(VolumeCalls.attach(uid, cluster_id, detach=True))
