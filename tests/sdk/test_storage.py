"""client.storage and client.requests: against a real server, and wait's Retry-After."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import jobyard
from jobyard.errors import Conflict, NotFound, ValidationFailed
from jobyard.sdk import storage as sdk_storage


def test_volume_lifecycle_with_the_blocking_client(server):
    with jobyard.Client(server.url, server.admin_key) as c:
        accepted = c.storage.create("sdk-vol", size_gb=1)
        done = c.requests.wait(accepted.request_id, timeout=20)
        assert done.status == "COMPLETED" and done.object_id == accepted.storage_id
        assert done.retry_after is None and done.created_at is not None
        with pytest.raises(Conflict):
            c.storage.create("sdk-vol", size_gb=1)
        with pytest.raises(ValidationFailed):
            c.storage.edit(accepted.storage_id, size_gb=0)
        edited = c.requests.wait(c.storage.edit(accepted.storage_id, name="sdk-vol2",
                                                size_gb=2).request_id, timeout=20)
        assert edited.status == "COMPLETED"
        vol = c.storage.get(accepted.storage_id)
        assert (vol.name, vol.size_gb, vol.over_quota) == ("sdk-vol2", 2, False)
        assert vol.id in {v.id for v in c.storage.list()}
        assert accepted.request_id in {r.id for r in c.requests.list(limit=20)}
        gone = c.requests.wait(c.storage.destroy(vol.id).request_id, timeout=20)
        assert gone.status == "COMPLETED"
        with pytest.raises(NotFound):
            c.storage.get(vol.id)


def test_the_async_client_does_the_same(server):
    async def main() -> None:
        async with jobyard.AsyncClient(server.url, server.admin_key) as c:
            accepted = await c.storage.create("async-vol", size_gb=1)
            done = await c.requests.wait(accepted.request_id, timeout=20)
            assert done.status == "COMPLETED"
            assert (await c.storage.get(accepted.storage_id)).state == "ready"

    asyncio.run(main())


def test_wait_sleeps_as_retry_after_says(monkeypatch):
    answers = [("PENDING", "3"), ("RETRYING", "soon"), ("PROCESSING", "0"), ("COMPLETED", None)]

    def handler(request: httpx.Request) -> httpx.Response:
        status, after = answers.pop(0)
        headers = {"Retry-After": after} if after else {}
        return httpx.Response(200, headers=headers, json={
            "id": "req_x", "type": "STORAGE_CREATE", "status": status})

    slept: list[float] = []
    monkeypatch.setattr(sdk_storage.time, "sleep", slept.append)
    with jobyard.Client("http://jobyard.test", "k") as c:
        c._http = httpx.Client(base_url="http://jobyard.test",
                               transport=httpx.MockTransport(handler))
        assert c.requests.wait("req_x").status == "COMPLETED"
    # 3 as told; a non-integer falls back to 2; never less than 1.
    assert slept == [3.0, 2.0, 1.0]
