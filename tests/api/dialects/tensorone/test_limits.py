"""The page's 429 (status checks per API key, ``X-RateLimit-*`` and ``Retry-After``) and its 404
for a job past retention, on a server with a small limit and a short retention."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.tensorone.conftest import create_endpoint, run, start_server
from tests.api.helpers import wait_state

LIMIT = 5
RETENTION_DAYS = 3 / 86400  # three seconds


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    srv = start_server(database_url, tmp_path_factory, env={
        "JOBYARD_TENSORONE_STATUS_RATE_LIMIT": f"{LIMIT}/minute",
        "JOBYARD_RETENTION_DAYS": repr(RETENTION_DAYS),
        "JOBYARD_RETENTION_INTERVAL_S": "0.2",
    })
    yield srv
    srv.stop()


def new_key(server: ServerProcess) -> str:
    with server.client() as admin:
        r = admin.post("/v1/keys", json={"name": "t1"})
        assert r.status_code == 201, r.text
        return r.json()["key"]


def test_status_checks_are_limited_per_key(server: ServerProcess) -> None:
    key, other = new_key(server), new_key(server)
    with server.client() as api:
        endpoint = create_endpoint(api, "limited")["id"]
        job_id = run(api, endpoint, {"output": {}})  # runs are not status checks
    with server.client(key) as api:
        answers = [api.get(f"/v2/jobs/{job_id}/status"),
                   api.get("/v2/jobs/job_unknown/status"),  # counted too
                   api.post("/v2/jobs/status/batch", json={"jobIds": [job_id, "job_x"]}),
                   api.get(f"/v2/jobs/{job_id}/status", params={"format": "summary"}),
                   api.get(f"/v2/jobs/{job_id}/status", params={"include": "metrics"})]
        assert [r.status_code for r in answers] == [200, 404, 200, 200, 200]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["4", "3", "2", "1", "0"]
        assert {r.headers["x-ratelimit-limit"] for r in answers} == {str(LIMIT)}
        reset = int(answers[0].headers["x-ratelimit-reset"])
        assert time.time() < reset <= math.ceil(time.time()) + 60

        refused = [api.get(f"/v2/jobs/{job_id}/status"),
                   api.post("/v2/jobs/status/batch", json={"jobIds": [job_id]}),
                   api.get(f"/v2/jobs/{job_id}/status/stream")]
        for r in refused:
            assert r.status_code == 429, r.text
            body = r.json()
            assert body == {"error": "RATE_LIMIT_EXCEEDED",
                            "message": "Too many status check requests",
                            "details": {"limit": LIMIT, "window": "1m",
                                        "retryAfter": body["details"]["retryAfter"],
                                        "recommendation": "Use webhooks or SSE for real-time "
                                                          "updates"}}
            assert 1 <= body["details"]["retryAfter"] <= 60
            assert r.headers["retry-after"] == str(body["details"]["retryAfter"])
            assert r.headers["x-ratelimit-remaining"] == "0"
    with httpx.Client(base_url=server.url, headers={"Authorization": other}) as api:
        assert api.get(f"/v2/jobs/{job_id}/status").headers["x-ratelimit-remaining"] == "4"


def test_a_job_past_retention_is_job_not_found(server: ServerProcess) -> None:
    key = new_key(server)
    with server.client() as admin:
        endpoint = create_endpoint(admin, "short_lived")["id"]
        job_id = run(admin, endpoint, {"output": {"kept": False}})
        wait_state(admin, job_id, "completed")  # native polling: not a status check
    with server.client(key) as api:  # seen before retention's sweep (it ended just now) ...
        fresh = api.get(f"/v2/jobs/{job_id}/status")
        assert fresh.status_code == 200 and fresh.json()["status"] == "completed"
    with server.client() as admin:  # ... then deleted by retention
        wait_until(lambda: admin.get(f"/v1/jobs/{job_id}").status_code == 404, timeout=30,
                   interval=0.1)
    with server.client(key) as api:
        r = api.get(f"/v2/jobs/{job_id}/status")
        assert r.status_code == 404
        assert r.json() == {"error": "JOB_NOT_FOUND",
                            "message": f"Job {job_id} does not exist or has expired",
                            "details": {"jobId": job_id, "possibleReasons": [
                                "Job ID is incorrect", "Job was deleted after completion",
                                f"Job expired (older than {RETENTION_DAYS:g} days)"]}}
        batch = api.post("/v2/jobs/status/batch", json={"jobIds": [job_id]}).json()
        assert batch["jobs"] == [] and batch["errors"][0]["error"] == "JOB_NOT_FOUND"
