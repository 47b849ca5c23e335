"""client.volumes and client.operations against a real server; their older names
client.storage and client.requests still work (the same objects)."""

from __future__ import annotations

import asyncio

import pytest

import jobyard
from jobyard.errors import Conflict, NotFound, ValidationFailed


def test_volume_lifecycle_with_the_blocking_client(server):
    with jobyard.Client(server.url, server.admin_key) as c:
        accepted = c.volumes.create("sdk-vol", size_gb=1)
        done = c.operations.wait(accepted.request_id, timeout=20)
        assert done.status == "COMPLETED" and done.object_id == accepted.storage_id
        assert done.retry_after is None and done.created_at is not None
        with pytest.raises(Conflict):
            c.volumes.create("sdk-vol", size_gb=1)
        with pytest.raises(ValidationFailed):
            c.volumes.edit(accepted.storage_id, size_gb=0)
        edited = c.operations.wait(c.volumes.edit(accepted.storage_id, name="sdk-vol2",
                                                  size_gb=2).request_id, timeout=20)
        assert edited.status == "COMPLETED"
        vol = c.volumes.get(accepted.storage_id)
        assert (vol.name, vol.size_gb, vol.over_quota) == ("sdk-vol2", 2, False)
        assert vol.id in {v.id for v in c.volumes.list()}
        assert accepted.request_id in {r.id for r in c.operations.list(limit=20)}
        gone = c.operations.wait(c.volumes.destroy(vol.id).request_id, timeout=20)
        assert gone.status == "COMPLETED"
        with pytest.raises(NotFound):
            c.volumes.get(vol.id)


def test_the_async_client_does_the_same_under_the_older_names(server):
    async def main() -> None:
        async with jobyard.AsyncClient(server.url, server.admin_key) as c:
            assert c.storage is c.volumes and c.requests is c.operations
            accepted = await c.storage.create("async-vol", size_gb=1)
            done = await c.requests.wait(accepted.request_id, timeout=20)
            assert done.status == "COMPLETED"
            assert (await c.storage.get(accepted.storage_id)).state == "ready"

    asyncio.run(main())

