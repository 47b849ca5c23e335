"""The last line of defence on a real uvicorn server, in process (the app as ``jobyard serve``
builds it, plus routes that fail on purpose): an unexpected exception costs the client only
the request that raised it, and a full disk is a 507 with ``Retry-After`` in every dialect."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from jobyard.api.app import create_app
from jobyard.api.dialects.tensorpool.shapes import TensorPoolRoute
from jobyard.config import load_config
from jobyard.runtime import build_runtime
from jobyard.testing import free_port, wait_until


def _full_disk() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _crash() -> None:
    raise RuntimeError("a secret detail that must stay in the log")


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    rt = build_runtime(load_config(data_dir=tmp_path_factory.mktemp("guard"), virtual_gpus=0),
                       with_daemon=False)
    app = create_app(rt)
    app.add_api_route("/test/crash", _crash)
    app.add_api_route("/test/full", _full_disk)

    @app.get("/test/port")
    async def port(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}  # the client's end: one per connection

    @app.get("/test/stream")
    async def stream() -> StreamingResponse:
        async def body() -> Iterator[bytes]:
            yield b"the first part"
            _crash()

        return StreamingResponse(body())

    vendor = APIRouter(route_class=TensorPoolRoute)
    vendor.add_api_route("/test/vendor/crash", _crash)
    vendor.add_api_route("/test/vendor/full", _full_disk)
    app.include_router(vendor)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(15)


def test_a_crash_costs_only_its_own_request_not_the_connection(url):
    with httpx.Client(base_url=url, timeout=10) as client:
        ports = set()
        for _ in range(20):
            crashed = client.get("/test/crash")
            assert crashed.status_code == 500
            assert crashed.json()["error"]["code"] == "INTERNAL_ERROR"
            assert "secret" not in crashed.text
            ports.add(client.get("/test/port").json()["port"])
        assert len(ports) == 1  # every request after a 500 came on the same connection


def test_a_crash_in_a_vendor_route_keeps_the_vendor_shape_and_the_connection(url):
    with httpx.Client(base_url=url, timeout=10) as client:
        before = client.get("/test/port").json()["port"]
        crashed = client.get("/test/vendor/crash")
        assert crashed.status_code == 500 and crashed.json()["error"] == "INTERNAL_ERROR"
        assert client.get("/test/port").json()["port"] == before


def test_a_full_disk_is_507_with_retry_after_in_every_dialect(url):
    with httpx.Client(base_url=url, timeout=10) as client:
        native = client.get("/test/full")
        assert native.status_code == 507 and native.headers["Retry-After"] == "30"
        assert native.json()["error"]["code"] == "STORAGE_FULL"
        vendor = client.get("/test/vendor/full")
        assert vendor.status_code == 507 and vendor.headers["Retry-After"] == "30"
        assert vendor.json()["error"] == "STORAGE_FULL" and vendor.json()["message"]


def test_a_crash_mid_answer_cuts_that_answer_and_the_server_serves_on(url):
    with httpx.Client(base_url=url, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/test/stream")  # the body ends early: never mistaken for complete
        assert client.get("/test/port").status_code == 200
