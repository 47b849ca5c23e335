"""What the native API takes (issue #11): a client's input never gets a 500, whatever it holds;
a bad one is a 4xx in the native shape (422 ``{"detail": [{loc, msg, type}]}``, other errors
``{"error": {code, message, details}}``). One test per finding, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"]
LONE = ["\\ud800", "\\udfff", "a\\ud83d", "\\udc00z"]  # as JSON escapes
# Bodies with a slot ``%s`` for a number, one per kind of body.
NUMBER_BODIES = [
    ("POST", "/v1/jobs", b'{"command": "true", "time_limit_s": %s}'),
    ("POST", "/v1/jobs", b'{"command": %s}'),
    ("POST", "/v1/jobs", b'{"command": "true", "resources": {"cpus": %s}}'),
    ("POST", "/v1/jobs", b'{"command": "true", "retry": {"backoff_s": %s}}'),
    ("PUT", "/v1/users/admin/budget", b'{"budget": %s}'),
    ("PUT", "/v1/orgs/default/budget", b'{"budget": %s}'),
    ("POST", "/v1/storage", b'{"name": "v", "size_gb": %s}'),
    ("POST", "/v1/clusters", b'{"instance_type": "cpu-1", "instance_count": %s}'),
    ("POST", "/v1/endpoints", b'{"name": "e", "command": "true", "time_limit_s": %s}'),
    ("POST", "/v1/packages", b'{"name": "p", "command": "true", "variables": {"X": %s}}'),
    ("POST", "/v1/jobs/1/report", b'{"progress": %s, "metadata": {"m": %s}}'),
]
# Bodies with a slot ``%s`` for a JSON string.
TEXT_BODIES = [
    ("POST", "/v1/jobs", b'{"command": "%s"}'),
    ("POST", "/v1/jobs", b'{"command": ["echo", "%s"]}'),
    ("POST", "/v1/jobs", b'{"command": "true", "name": "%s"}'),
    ("POST", "/v1/jobs", b'{"command": "true", "env": {"A": "%s"}}'),
    ("POST", "/v1/jobs", b'{"command": "true", "env": {"%s": "v"}}'),
    ("POST", "/v1/jobs", b'{"command": "true", "tags": ["%s"]}'),
    ("POST", "/v1/jobs", b'{"command": "true", "workdir": "/tmp/%s"}'),
    ("POST", "/v1/jobs", b'{"command": "true", "outputs": ["%s"]}'),
    ("POST", "/v1/keys", b'{"name": "%s"}'),
    ("POST", "/v1/orgs", b'{"name": "%s"}'),
    ("POST", "/v1/storage", b'{"name": "%s", "size_gb": 1}'),
    ("POST", "/v1/endpoints", b'{"name": "e", "command": "true", "env": {"K": "%s"}}'),
    ("POST", "/v1/packages", b'{"name": "p", "command": "true", "description": "%s"}'),
    ("POST", "/v1/schedules", b'{"name": "%s", "package": 1, "interval_amount": 1, '
                              b'"interval_unit": "days"}'),
    ("PUT", "/v1/me/webhook", b'{"url": "https://example.com/%s"}'),
]


def native_error(r: httpx.Response, data_dir: str) -> dict[str, Any]:
    """A 4xx in the native shape that names no server path."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    if r.status_code == 422 and "detail" in body:
        assert body["detail"] and all({"loc", "msg", "type"} <= set(e) for e in body["detail"])
    else:
        assert {"code", "message", "details"} <= set(body["error"]), body
    assert data_dir not in r.text
    return body


# 7. non-finite numbers -----------------------------------------------------------------------
@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(("method", "path", "body"), NUMBER_BODIES)
def test_non_finite_numbers_are_refused_anywhere_in_a_body(raw, server, number, method, path,
                                                           body) -> None:
    r = raw.request(method, path, content=body.replace(b"%s", number))
    found = native_error(r, str(server.data_dir))
    assert r.status_code == 422 and "finite" in found["detail"][0]["msg"]


def test_an_integer_beyond_64_bits_is_refused(raw, server) -> None:
    for body in (b'{"command": "true", "priority": 99999999999999999999}',
                 b'{"command": "true", "resources": {"memory_mb": -99999999999999999999}}'):
        r = raw.post("/v1/jobs", content=body)
        assert native_error(r, str(server.data_dir))["detail"][0]["type"] == "int_too_large"


# 8. lone surrogates ----------------------------------------------------------------------------
@pytest.mark.parametrize("lone", LONE)
@pytest.mark.parametrize(("method", "path", "body"), TEXT_BODIES)
def test_lone_surrogates_are_refused_in_any_text(raw, server, lone, method, path, body) -> None:
    r = raw.request(method, path, content=body.replace(b"%s", lone.encode()))
    found = native_error(r, str(server.data_dir))
    assert r.status_code == 422 and "surrogate" in found["detail"][0]["msg"]


def test_a_lone_surrogate_in_a_key_is_refused_and_echoed_safely(raw, server) -> None:
    r = raw.post("/v1/jobs", content=b'{"command": "true", "\\ud800x": 1}')
    detail = native_error(r, str(server.data_dir))["detail"][0]
    assert detail["loc"] == ["body", "\\ud800x"] and "surrogate" in detail["msg"]


def test_a_validation_error_echoes_odd_input_without_failing(raw, server) -> None:
    """The renderer never fails on what it echoes (a pydantic error's ``input``)."""
    r = raw.post("/v1/jobs", content=b'{"command": {"deep": [1.5, "x", null]}}')
    detail = native_error(r, str(server.data_dir))["detail"]
    assert detail[0]["loc"][:2] == ["body", "command"]


# 9. ids ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["%C2%B2", "%D9%A3", "1%C2%B2", str(2**63), str(2**63 - 1),
                                 "9" * 30, str(2**31), "-1", str(-(2**70)), "1e3", " 1"])
@pytest.mark.parametrize("path", ["/v1/jobs/{}", "/v1/jobs/{}/logs", "/v1/jobs/{}/events",
                                  "/v1/jobs/{}/metrics", "/v1/jobs/{}/outputs",
                                  "/v1/jobs/{}/webhooks", "/v1/packages/{}",
                                  "/v1/schedules/{}", "/v1/endpoints/{}", "/v1/clusters/{}",
                                  "/v1/storage/{}", "/v1/requests/{}"])
def test_odd_ids_are_not_found_or_invalid(api, server, ref, path) -> None:
    r = api.get(path.format(ref))
    native_error(r, str(server.data_dir))
    assert r.status_code in (404, 422)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/jobs/{}/cancel"), ("DELETE", "/v1/jobs/{}"), ("DELETE", "/v1/packages/{}"),
    ("DELETE", "/v1/schedules/{}"), ("POST", "/v1/schedules/{}/enable"),
    ("DELETE", "/v1/keys/{}")])
@pytest.mark.parametrize("ref", ["%C2%B2", str(2**63), "9" * 25, str(-(2**70))])
def test_odd_ids_in_writes_are_not_found_or_invalid(api, server, method, path, ref) -> None:
    r = api.request(method, path.format(ref))
    native_error(r, str(server.data_dir))


def test_numbers_and_uids_still_name_jobs(api) -> None:
    job = api.post("/v1/jobs", json={"command": "true"}).json()
    assert api.get(f"/v1/jobs/{job['number']}").json()["id"] == job["id"]
    assert api.get(f"/v1/jobs/{job['id']}").json()["number"] == job["number"]
    assert api.get(f"/v1/jobs/0{job['number']}").json()["id"] == job["id"]


@pytest.mark.parametrize("params", [
    {"offset": str(2**63)}, {"limit": "%C2%B2"}, {"offset": "9" * 30},
    {"cursor": "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk"}, {"cursor": "aWQ6wrI"}])
def test_odd_numbers_in_queries_are_refused(api, server, params) -> None:
    path = "/v1/packages" if "offset" in params else "/v1/jobs"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    native_error(api.get(f"{path}?{query}"), str(server.data_dir))


def test_an_odd_last_event_id_is_ignored(api) -> None:
    job = api.post("/v1/jobs", json={"command": "true"}).json()
    for value in (b"\xb2", str(2**63).encode(), b"9" * 40):
        with api.stream("GET", f"/v1/jobs/{job['id']}/events",
                        headers={"Last-Event-ID": value}) as r:
            assert r.status_code == 200


# 10. NUL characters ------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), TEXT_BODIES)
def test_nul_characters_are_refused_in_any_text(raw, server, method, path, body) -> None:
    r = raw.request(method, path, content=body.replace(b"%s", b"a\\u0000b"))
    found = native_error(r, str(server.data_dir))
    assert r.status_code == 422 and "NUL" in found["detail"][0]["msg"]


@pytest.mark.parametrize("path", [
    "/v1/jobs?name=a%00b", "/v1/jobs?tag=%00", "/v1/jobs?state=queued%00",
    "/v1/jobs?cursor=%00", "/v1/jobs/job_%00", "/v1/jobs/job_x%00/logs",
    "/v1/packages/p%00", "/v1/endpoints/ep_%00", "/v1/clusters/clu_%00", "/v1/storage/vol%00",
    "/v1/requests/req_%00", "/v1/orgs/a%00b/quota", "/v1/orgs/a%00/budget",
    "/v1/users/u%00/budget", "/v1/keys?username=a%00b", "/v1/jobs?a%00=1"])
def test_nul_characters_are_refused_in_paths_and_queries(api, server, path) -> None:
    r = api.get(path)
    found = native_error(r, str(server.data_dir))
    assert r.status_code == 422 and "NUL" in found["detail"][0]["msg"]


# 11. tokens from headers -----------------------------------------------------------------------
@pytest.mark.parametrize("token", [b"jyt_job_x.1.\xe9\xe9", b"jyt_job_x.\xb2.abc",
                                   b"jyt_job_x.1." + b"\xe9" * 40, b"\xff\xfe", b"jyt_\xb2"])
def test_a_non_ascii_job_token_is_unauthorized(server, token) -> None:
    job = httpx.post(f"{server.url}/v1/jobs", json={"command": "true"},
                     headers={"Authorization": f"Bearer {server.admin_key}"}).json()
    r = httpx.post(f"{server.url}/v1/jobs/{job['id']}/report", json={"progress": 1},
                   headers={"Authorization": b"Bearer " + token})
    assert r.status_code == 401 and native_error(r, str(server.data_dir))


def test_a_non_ascii_api_key_is_unauthorized(server) -> None:
    r = httpx.get(f"{server.url}/v1/me", headers={"Authorization": b"Bearer jy_\xe9\xb2"})
    assert r.status_code == 401 and native_error(r, str(server.data_dir))


# 13. chunked bodies over the limit -------------------------------------------------------------
def test_a_chunked_body_over_the_limit_is_413_like_a_sized_one(server) -> None:
    limit = 1024 * 1024

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    headers = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"}
    for path in ("/v1/jobs", "/v1/jobs/1/report", "/cluster/create", "/v2/endpoints/ep_x/run"):
        sized = httpx.post(f"{server.url}{path}", content=b" " * (limit + 1), headers=headers)
        chunked = httpx.post(f"{server.url}{path}", content=chunks(), headers=headers)
        assert (sized.status_code, chunked.status_code) == (413, 413), (path, chunked.text)
        assert chunked.json() == sized.json()
        assert sized.json()["error"]["code"] == "REQUEST_TOO_LARGE"
    with httpx.Client(base_url=server.url, headers=headers) as client:  # the server goes on
        assert client.post("/v1/jobs", content=chunks()).status_code == 413
        assert client.get("/v1/me").status_code == 200


# 14. values that meant something else ----------------------------------------------------------
def test_an_infinite_time_limit_is_refused_not_stored_as_none(raw, server) -> None:
    r = raw.post("/v1/jobs", content=b'{"command": "true", "time_limit_s": Infinity}')
    assert r.status_code == 422 and native_error(r, str(server.data_dir))


def test_an_unknown_instance_type_is_refused(api, server) -> None:
    r = api.post("/v1/jobs", json={"command": "true", "instance_type": "8xB200"})
    detail = native_error(r, str(server.data_dir))["detail"][0]
    assert r.status_code == 422 and detail["loc"] == ["body", "instance_type"]
    assert "unknown instance_type '8xB200'" in detail["msg"] and "cpu-1" in detail["msg"]
    r = api.post("/v1/jobs", json={"command": "true", "instance_type": "cpu-1"})
    assert r.status_code == 201 and r.json()["instance_type"] == "cpu-1"
