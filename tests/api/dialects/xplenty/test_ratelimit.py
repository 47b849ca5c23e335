"""Credits: ``xplenty_rate_limit`` per user (here 5 per hour), one per call; past them 429 with
``Retry-After``. ``rate_limit_status`` is free and says what is left. Counted in memory, so
one server is enough (no database parameter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.testing import ServerProcess
from tests.api.dialects.xplenty.conftest import basic, sdk_runner, xclient
from tests.api.dialects.xplenty.seed import check_error


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"),
                        env={"JOBYARD_XPLENTY_RATE_LIMIT": "5/hour"})
    srv.start()
    yield srv
    srv.stop()


def test_credits_run_out_per_user(server: ServerProcess, api: httpx.Client,
                                  sdk_python: Path) -> None:
    with xclient(server) as x:
        status = x.get("/rate_limit_status")
        assert status.json() == {"limits": {"limit": 5, "remaining": 5}}
        for left in (4, 3, 2, 1, 0):
            r = x.get("/jobs")
            assert r.status_code == 200, r.text
            assert r.headers["x-ratelimit-remaining"] == str(left)
            assert r.headers["x-ratelimit-limit"] == "5"
        r = x.get("/jobs")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 3600
        assert check_error(r.json()).startswith("rate limit exceeded: 5 API credits per 1h")
        assert x.get("/rate_limit_status").json() == {"limits": {"limit": 5, "remaining": 0}}

    refused = sdk_runner(sdk_python, server)("jobs")
    assert refused["status"] == 429 and "rate limit exceeded" in refused["error"]
    assert sdk_runner(sdk_python, server)("limits") == {"limit": 5, "remaining": 0,
                                                        "missing": []}
    # A bad key costs nobody anything, and another user has credits of their own.
    r = httpx.get(f"{server.url}/default/api/jobs", timeout=10, headers={
        "Accept": "application/vnd.xplenty+json; version=2", "Authorization": basic("jy_no")})
    assert r.status_code == 401
    assert api.post("/v1/users", json={"username": "xp-carol", "org": "default"}
                    ).status_code == 201
    key = api.post("/v1/keys", json={"username": "xp-carol", "name": "k"}).json()["key"]
    with xclient(server, key=key) as x:
        assert x.get("/jobs").status_code == 200
        assert x.get("/rate_limit_status").json()["limits"]["remaining"] == 4
