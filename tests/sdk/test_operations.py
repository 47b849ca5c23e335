"""client.operations (the API's async requests): wait's Retry-After, without a server."""

from __future__ import annotations

import httpx

import jobyard
from jobyard.sdk import operations as sdk_operations


def test_wait_sleeps_as_retry_after_says(monkeypatch):
    answers = [("PENDING", "3"), ("RETRYING", "soon"), ("PROCESSING", "0"), ("COMPLETED", None)]

    def handler(request: httpx.Request) -> httpx.Response:
        status, after = answers.pop(0)
        headers = {"Retry-After": after} if after else {}
        return httpx.Response(200, headers=headers, json={
            "id": "req_x", "type": "STORAGE_CREATE", "status": status})

    slept: list[float] = []
    monkeypatch.setattr(sdk_operations.time, "sleep", slept.append)
    with jobyard.Client("http://jobyard.test", "k") as c:
        c._http = httpx.Client(base_url="http://jobyard.test",
                               transport=httpx.MockTransport(handler))
        assert c.operations.wait("req_x").status == "COMPLETED"
    # 3 as told; a non-integer falls back to 2; never less than 1.
    assert slept == [3.0, 2.0, 1.0]


def test_the_older_names_are_the_same_namespaces():
    with jobyard.Client("http://jobyard.test", "k") as c:
        assert c.requests is c.operations and c.storage is c.volumes
