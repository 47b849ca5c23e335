"""What the TensorOne dialect takes (issue #11): never a 500; a bad request is 400
``INVALID_REQUEST`` in the page's envelope (``{"error", "message", "details"}``, the problems in
``details.errors``). And a job's status always carries ``progress``, a whole percent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess
from tests.api.dialects.tensorone.conftest import create_endpoint, run, status, wait_status

NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-99999999999999999999"]
TEXTS = [b"\\ud800", b"x\\udc00", b"a\\u0000b"]
NUMBER_BODIES = [
    b'{"input": %s}', b'{"input": {"a": [1, {"b": %s}]}}', b'{"timeout": %s}',
    b'{"retry": {"maxRetries": %s}}', b'{"retry": {"backoffSeconds": %s}}',
]
TEXT_BODIES = [
    b'{"input": "%s"}', b'{"input": {"%s": 1}}', b'{"tags": {"k": "%s"}}',
    b'{"tags": {"%s": "v"}}', b'{"webhook": "https://example.com/%s"}',
    b'{"webhook": {"url": "https://example.com", "events": ["%s"]}}', b'{"priority": "%s"}',
]


def t1_error(r: httpx.Response, server: ServerProcess, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert {"error", "message", "details"} <= set(body), body
    assert str(server.data_dir) not in r.text
    return body


@pytest.fixture(scope="module")
def endpoint(server: ServerProcess) -> str:
    with server.client() as api:
        return create_endpoint(api, "validated")["id"]


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("body", NUMBER_BODIES)
@pytest.mark.parametrize("call", ["run", "runsync"])
def test_run_bodies_take_finite_numbers_only(raw, server, endpoint, number, body,
                                             call) -> None:
    r = raw.post(f"/v2/endpoints/{endpoint}/{call}", content=body.replace(b"%s", number))
    found = t1_error(r, server)
    assert found["error"] == "INVALID_REQUEST" and found["details"]["errors"]
    assert found["message"].startswith("invalid request: ")


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("body", TEXT_BODIES)
def test_run_bodies_take_no_nul_and_no_lone_surrogate(raw, server, endpoint, text,
                                                      body) -> None:
    r = raw.post(f"/v2/endpoints/{endpoint}/run", content=body.replace(b"%s", text))
    found = t1_error(r, server)
    assert found["details"]["errors"][0]["type"] == "string_invalid"


@pytest.mark.parametrize("body", [b'{"jobIds": ["job_\\u0000"]}', b'{"jobIds": ["\\ud800"]}',
                                  b'{"jobIds": ["j"], "include": "logs\\u0000"}',
                                  b'{"jobIds": [NaN]}', b'{"jobIds": ["j"], "include": 1e999}'])
def test_a_batch_takes_valid_text_and_numbers_only(raw, server, body) -> None:
    t1_error(raw.post("/v2/jobs/status/batch", content=body), server)


@pytest.mark.parametrize("path", ["/v2/jobs/job_%00/status", "/v2/jobs/%00/status/stream",
                                  "/v2/jobs/job_x/status?include=logs%00",
                                  "/v2/jobs/job_x/status?format=json%00",
                                  "/v2/endpoints/ep_%00/run"])
def test_nul_in_paths_and_queries_is_an_invalid_request(api, server, path) -> None:
    method = "POST" if path.endswith("/run") else "GET"
    t1_error(api.request(method, path, json={} if method == "POST" else None), server)


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 40, str(2**63).encode()])
def test_an_odd_last_event_id_starts_the_stream_over(api, endpoint, value) -> None:
    job = run(api, endpoint, {})
    wait_status(api, job, {"completed", "failed"})
    with api.stream("GET", f"/v2/jobs/{job}/status/stream",
                    headers={"Last-Event-ID": value}) as r:
        assert r.status_code == 200
        assert "event: status" in "".join(r.iter_text())


@pytest.mark.parametrize("key", [b"Bearer \xe9\xb2", b"\xff", b"Bearer jy_" + b"\xe9" * 50])
def test_a_non_ascii_key_is_unauthorized(server, key) -> None:
    r = httpx.get(f"{server.url}/v2/jobs/job_x/status", headers={"Authorization": key})
    assert t1_error(r, server, 401)["error"] == "UNAUTHORIZED"


def test_every_route_documents_the_error_envelope(api) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/v2/jobs/{job_id}/status", "/v2/jobs/status/batch",
                 "/v2/endpoints/{endpoint_id}/run"):
        for operation in spec["paths"][path].values():
            assert "422" not in operation["responses"]  # TensorOne answers 400
            schema = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert schema["required"] == ["error", "message", "details"]


# 16. progress ------------------------------------------------------------------------------------
def test_progress_is_a_whole_percent_always(api, endpoint, release: Callable[[], str]) -> None:
    """A running job that has reported nothing shows 0 (the page's example then prints
    ``running (0%)``, not ``(None%)``), its phase as ``currentStep`` and ``{}`` metadata; a
    fractional report is a whole percent; a completed job 100."""
    gate = release()
    job = run(api, endpoint, {"release": gate})
    body = wait_status(api, job, lambda s: s["status"] == "running")
    assert body["progress"] == 0 and isinstance(body["progress"], int)
    assert body["currentStep"] in ("warming_up", "processing") and body["metadata"] == {}
    short = status(api, job, format="summary")
    assert short["progress"] == 0 and f"Job {job} is running (0%)" in short["summary"]
    Path(gate).touch()
    done = wait_status(api, job, "completed")
    assert done["progress"] == 100

    gate = release()
    job = run(api, endpoint, {"release": gate, "reports": [{"progress": 66.9, "step": "s"}]})
    body = wait_status(api, job, lambda s: s.get("currentStep") == "s")
    assert body["progress"] == 66 and isinstance(body["progress"], int)
    Path(gate).touch()
    wait_status(api, job, "completed")


def test_a_queued_or_failed_job_shows_progress_zero(api, endpoint) -> None:
    job = run(api, endpoint, {"exit": 3})
    body = wait_status(api, job, "failed")
    assert body["progress"] == 0 and "currentStep" not in body
