"""What the Integrate.io dialect takes (issue #11): never a 500; a bad request is a 4xx whose
body is ``{"message": ...}`` (the SDK's exception text), for JSON and form bodies, ids,
pages and credentials alike."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.xplenty.conftest import ACCEPT, ACCOUNT, basic

NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"99999999999999999999"]
TEXTS = [b"\\ud800", b"x\\udfff", b"a\\u0000b"]
NUMBER_BODIES = [
    ("/clusters", b'{"type": "production", "nodes": %s}'),
    ("/clusters", b'{"type": "sandbox", "time_to_idle": %s}'),
    ("/clusters", b'{"cluster": {"nodes": 1, "terminate_on_idle": %s}}'),
    ("/jobs", b'{"cluster_id": %s, "package_id": 1}'),
    ("/jobs", b'{"cluster_id": 1, "package_id": 1, "variables": {"A": %s}}'),
]
TEXT_BODIES = [
    ("/clusters", b'{"type": "%s", "nodes": 1}'),
    ("/clusters", b'{"nodes": 1, "name": "%s"}'),
    ("/clusters", b'{"nodes": 1, "description": "%s"}'),
    ("/jobs", b'{"cluster_id": "%s", "package_id": 1}'),
    ("/jobs", b'{"cluster_id": 1, "package_id": 1, "variables": {"%s": "1"}}'),
    ("/jobs", b'{"job": {"cluster_id": 1, "package_id": 1, "dynamic_variables": {"A": "%s"}}}'),
]


def x_error(r: httpx.Response, server: ServerProcess) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"message"} and isinstance(body["message"], str), body
    assert str(server.data_dir) not in body["message"]
    return str(body["message"])


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize(("path", "body"), NUMBER_BODIES)
def test_numbers_must_be_finite_and_fit_64_bits(xapi, server, number, path, body) -> None:
    r = xapi.post(path, content=body.replace(b"%s", number),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and x_error(r, server).startswith("invalid request: ")


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize(("path", "body"), TEXT_BODIES)
def test_text_has_no_nul_and_no_lone_surrogate(xapi, server, text, path, body) -> None:
    r = xapi.post(path, content=body.replace(b"%s", text),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and x_error(r, server).startswith("invalid request: ")


@pytest.mark.parametrize("form", [b"cluster[name]=a%00b&cluster[nodes]=1",
                                  b"job[cluster_id]=1&job[package_id]=1&job[variables][A]=%00",
                                  b"job[cluster_id]=%C2%B2&job[package_id]=1",
                                  b"job[cluster_id]=99999999999999999999&job[package_id]=1",
                                  b"job[cluster_id]=3000000000&job[package_id]=1"])
def test_form_bodies_follow_the_same_rules(xapi, server, form) -> None:
    path = "/clusters" if form.startswith(b"cluster") else "/jobs"
    r = xapi.post(path, content=form,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and x_error(r, server)


@pytest.mark.parametrize("path", [
    "/jobs/%C2%B2", f"/jobs/{2**63}", "/jobs/99999999999999999999", "/clusters/%C2%B2",
    f"/clusters/{2**63}", "/packages/%C2%B2", f"/packages/{2**63}", "/schedules/%C2%B2",
    f"/schedules/{2**63}", f"/jobs?offset={2**63}", "/jobs?offset=%C2%B2",
    "/jobs?offset=99999999999999999999", "/clusters?limit=%C2%B2", "/packages?offset=-1",
    f"/schedules?offset={2**63}", "/jobs?status=%00", "/jobs/%00", "/nothing/%00"])
def test_odd_ids_and_pages_are_4xx(xapi, server, path) -> None:
    x_error(xapi.get(path), server)


@pytest.mark.parametrize("account", ["%C2%B2", "%00", "99999999999", str(2**63), "a%00b",
                                     "%E2%80%AE"])
def test_an_odd_account_is_not_found_or_invalid(server, account) -> None:
    with httpx.Client(base_url=server.url, timeout=10,
                      headers={"Accept": ACCEPT, "Authorization": basic(server.admin_key)}) as x:
        r = x.get(f"/{account}/api/jobs")
    assert r.status_code in (404, 422) and x_error(r, server)


@pytest.mark.parametrize("credentials", [b"Basic \xe9\xe9==", b"Basic \xb2",
                                         b"Basic " + base64.b64encode(b"\xff\xfe"),
                                         b"Basic " + base64.b64encode(b"key\x00:"),
                                         b"\xe9 abc"])
def test_non_ascii_or_odd_credentials_are_unauthorized(server, credentials) -> None:
    r = httpx.get(f"{server.url}/{ACCOUNT}/api/jobs",
                  headers={"Accept": ACCEPT, "Authorization": credentials})
    assert r.status_code == 401 and "credentials" in x_error(r, server)


@pytest.mark.parametrize("body", [b"", b"{}", b'{"cluster": {}}', b'{"type": "production"}',
                                  b"cluster[name]=x"])
def test_a_cluster_needs_its_nodes(xapi, server, body) -> None:
    kind = "application/x-www-form-urlencoded" if b"[" in body else "application/json"
    r = xapi.post("/clusters", content=body, headers={"Content-Type": kind})
    assert r.status_code == 422 and x_error(r, server) == "invalid request: nodes: is required"


def test_a_sandbox_needs_no_nodes(xapi) -> None:
    r = xapi.post("/clusters", json={"type": "sandbox", "name": "validated-sandbox"})
    assert r.status_code == 201 and r.json()["nodes"] == 1
    cid = r.json()["id"]
    wait_until(lambda: xapi.get(f"/clusters/{cid}").json()["status"] == "available")
    assert xapi.delete(f"/clusters/{cid}").status_code == 200


def test_a_chunked_body_over_the_limit_is_413(xapi) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536

    r = xapi.post("/clusters", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQUEST_TOO_LARGE"


def test_every_route_documents_the_error_envelope(api) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/{account_id}/api/jobs", "/{account_id}/api/clusters/{cluster_id}"):
        for operation in spec["paths"][path].values():
            [(media, content)] = operation["responses"]["4XX"]["content"].items()
            assert media == ACCEPT and content["schema"]["required"] == ["message"]
