"""The TensorPool seed pages' OpenAPI blocks validate the server's answers on those endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import submit, wait_state

SEEDS = Path(__file__).resolve().parents[4] / "docs" / "seeds"  # the vendor pages, verbatim
BLOCK = re.compile(r"````yaml \S+ (\w+) (\S+)\n(.*?)````", re.S)


def seed_operations() -> dict[tuple[str, str], dict[str, Any]]:
    """``(method, path) -> OpenAPI document`` for every seed page that is TensorPool's."""
    found = {}
    for page in sorted(SEEDS.glob("*.txt")):
        for method, path, text in BLOCK.findall(page.read_text()):
            doc = yaml.safe_load(text)
            if doc.get("info", {}).get("title") == "TensorPool API":
                found[(method.upper(), path)] = doc
    return found


OPERATIONS = seed_operations()


def check(method: str, path: str, response: httpx.Response, status: int | None = None,
          schema_status: int | None = None) -> dict[str, Any]:
    """Validate ``response`` against the seed's schema for its (or ``schema_status``'s) code."""
    assert response.status_code == (status or response.status_code), response.text
    doc = OPERATIONS[(method, path)]
    answers = doc["paths"][path][method.lower()]["responses"]
    spec = answers[str(schema_status or response.status_code)]
    body = response.json()
    schema = spec["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})
    return body


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    """Requests stay PROCESSING for a moment, so non-terminal answers can be seen."""
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url,
                        env={"JOBYARD_REQUEST_PROCESSING_DELAY_S": "1.0"})
    srv.start()
    yield srv
    srv.stop()


def test_the_seed_pages_were_found() -> None:
    assert {("GET", "/job/info/{job_id}"), ("POST", "/job/cancel/{job_id}"),
            ("GET", "/request/info/{request_id}")} <= set(OPERATIONS)


def test_job_info_and_cancel_answers_match_the_seed(api: httpx.Client) -> None:
    info, cancel = "/job/info/{job_id}", "/job/cancel/{job_id}"
    running = submit(api, "sleep 60", resources={"gpus": 4})
    wait_state(api, running["id"], "running")
    body = check("GET", info, api.get(f"/job/info/{running['id']}"), 200)
    assert body["job_info"]["status"] == "running"

    queued = submit(api, "true", resources={"gpus": 4})  # waits for the GPUs
    body = check("GET", info, api.get(f"/job/info/{queued['id']}"), 200)
    assert body["job_info"]["status"] == "pending"
    body = check("POST", cancel, api.post(f"/job/cancel/{queued['id']}"), 202)
    assert body["status"] == "canceled"

    body = check("POST", cancel, api.post(f"/job/cancel/{running['id']}"), 202)
    assert body == {"job_id": running["id"], "status": "canceling", "message": body["message"]}
    wait_state(api, running["id"], "canceled")
    # 200 (idempotent) has no schema on the page; it keeps the 202's shape.
    body = check("POST", cancel, api.post(f"/job/cancel/{running['id']}"), 200, 202)
    assert body["status"] == "canceled"
    body = check("GET", info, api.get(f"/job/info/{running['id']}"), 200)
    assert body["job_info"]["status"] == "canceled"

    done = submit(api, "exit 4")
    wait_state(api, done["id"], "error")
    body = check("GET", info, api.get(f"/job/info/{done['id']}"), 200)
    assert body["job_info"]["status"] == "error" and body["job_info"]["exit_code"] == 4
    r = api.post(f"/job/cancel/{done['id']}")
    assert r.status_code == 400 and "cannot be canceled" in r.json()["message"]

    for method, path, url in (("GET", info, "/job/info/bad%20id"),
                              ("POST", cancel, "/job/cancel/bad%20id")):
        body = check(method, path, api.request(method, url), 422)
        assert body["message"]
    for method, url in (("GET", "/job/info/job_missing0000"),
                        ("POST", "/job/cancel/job_missing0000")):
        r = api.request(method, url)
        assert r.status_code == 404 and "not found" in r.json()["message"]


def test_request_info_answers_match_the_seed(api: httpx.Client) -> None:
    path = "/request/info/{request_id}"
    r = api.post("/v1/clusters", json={"instance_type": "cpu-1"})
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    first = api.get(f"/request/info/{rid}")
    body = check("GET", path, first, 200)
    assert body["status"] in ("PENDING", "PROCESSING") and body["request_type"] == "CLUSTER_CLAIM"
    assert int(first.headers["retry-after"]) >= 1

    def terminal() -> httpx.Response | None:
        r = api.get(f"/request/info/{rid}")
        return r if r.json()["status"] in ("COMPLETED", "FAILED") else None

    last = wait_until(terminal, timeout=20, interval=0.1)
    body = check("GET", path, last, 200)
    assert body["status"] == "COMPLETED" and body["object_id"] == r.json()["cluster_id"]
    assert "retry-after" not in last.headers
    check("GET", path, api.get("/request/info/bad%20id"), 422)
