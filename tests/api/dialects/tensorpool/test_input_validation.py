"""What the TensorPool dialect takes (issue #11): never a 500, whatever a request or a socket
frame holds; a bad one is a 4xx whose body carries ``message`` (what the CLI prints), a 422
with FastAPI's ``detail`` beside it; a socket closes with 4xxx and a ``message``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"99999999999999999999"]
BAD_TEXT = [b"\\ud800", b"a\\udfffb", b"a\\u0000b"]
NUMBER_BODIES = [
    ("POST", "/cluster/create", b'{"instance_type": "cpu-1", "num_nodes": %s}'),
    ("POST", "/cluster/create", b'{"instance_type": %s}'),
    ("POST", "/storage/create", b'{"size": %s}'),
    ("PATCH", "/storage/edit/vol_x", b'{"size_gb": %s}'),
    ("POST", "/health", b'{"package_version": %s}'),
    ("POST", "/health", b'{"package_version": "0.0.9", "extra": {"x": [%s]}}'),
]
TEXT_BODIES = [
    ("POST", "/cluster/create", b'{"instance_type": "%s"}'),
    ("POST", "/cluster/create", b'{"instance_type": "cpu-1", "tp_cluster_name": "%s"}'),
    ("POST", "/cluster/create", b'{"instance_type": "cpu-1", "public_keys": ["%s"]}'),
    ("PATCH", "/cluster/edit/clu_x", b'{"cluster_name": "%s"}'),
    ("POST", "/storage/create", b'{"size": 1, "name": "%s"}'),
    ("PATCH", "/storage/edit/vol_x", b'{"tp_storage_name": "%s"}'),
    ("POST", "/storage/attach", b'{"storage_id": "%s", "cluster_ids": ["c"]}'),
    ("POST", "/storage/detach", b'{"storage_id": "v", "cluster_id": "%s"}'),
    ("POST", "/user/ssh-key/add", b'{"public_key": "ssh-ed25519 AAAA", "name": "%s"}'),
    ("POST", "/health", b'{"package_version": "0.0.9", "%s": 1}'),
]


def tp_error(r: httpx.Response, server: ServerProcess) -> dict[str, Any]:
    """A 4xx with ``message`` (and ``detail`` on a 422) that names no server path."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["message"], str) and body["message"], body
    if r.status_code == 422:
        assert all({"loc", "msg", "type"} <= set(e) for e in body["detail"]), body
    assert str(server.data_dir) not in r.text
    return body


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(("method", "path", "body"), NUMBER_BODIES)
def test_numbers_must_be_finite_and_fit_64_bits(raw, server, number, method, path,
                                                body) -> None:
    r = raw.request(method, path, content=body.replace(b"%s", number))
    assert r.status_code == 422 and tp_error(r, server)["detail"][0]["type"] in (
        "finite_number", "int_too_large")


@pytest.mark.parametrize("text", BAD_TEXT)
@pytest.mark.parametrize(("method", "path", "body"), TEXT_BODIES)
def test_text_has_no_nul_and_no_lone_surrogate(raw, server, text, method, path, body) -> None:
    r = raw.request(method, path, content=body.replace(b"%s", text))
    body = tp_error(r, server)
    assert r.status_code == 422 and body["detail"][0]["type"] == "string_invalid"
    assert body["message"].startswith("invalid request: body")


@pytest.mark.parametrize("path", ["/job/info/%00", "/job/info/%C2%B2", "/job/info/" + "9" * 30,
                                  "/job/cancel/%C2%B2", "/job/pull/job_%00",
                                  "/cluster/info/%00", "/storage/info/%C2%B2",
                                  "/request/info/%00", "/user/ssh-key/list?x=%00",
                                  "/job/list?include_org=%00", "/job/file/%00"])
def test_odd_paths_and_queries_are_4xx(api, server, path) -> None:
    method = "POST" if "/cancel/" in path else "GET"
    tp_error(api.request(method, path), server)


@pytest.mark.parametrize("token", ["%C3%A9abc.def", "abc.d%C3%A9f", "abc." + "%C3%A9" * 40,
                                   "e30." + "0" * 40, "%00.%00", "a.b"])
def test_a_download_link_token_with_odd_bytes_is_refused(server, token) -> None:
    for path in (f"/job/file/{token}", f"/job/upload/{token}?offset=0"):
        method = "PUT" if "upload" in path else "GET"
        r = httpx.request(method, server.url + path, content=b"x" if method == "PUT" else None)
        assert r.status_code in (403, 422), (path, r.text)
        tp_error(r, server)


def test_a_cluster_of_zero_nodes_is_refused(api, server) -> None:
    for nodes in (0, -1):
        r = api.post("/cluster/create", json={"instance_type": "cpu-1", "num_nodes": nodes})
        body = tp_error(r, server)
        assert r.status_code == 422 and body["detail"][0]["loc"] == ["body", "num_nodes"]
        assert "num_nodes" in body["message"]


def test_object_storage_bucket_routes_document_their_path_parameter(api) -> None:
    spec = api.get("/openapi.json").json()
    for path, method in (("/object-storage/bucket/create/{bucket_name}", "put"),
                         ("/object-storage/bucket/delete/{bucket_name}", "delete")):
        params = spec["paths"][path][method].get("parameters", [])
        assert any(p["name"] == "bucket_name" and p["in"] == "path" and p["required"]
                   for p in params), params
        r = api.request(method.upper(), path.replace("{bucket_name}", "b1"))
        assert r.status_code == 501 and r.json()["error"] == "NOT_SUPPORTED"


def test_every_route_documents_the_error_envelope(api) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/job/info/{job_id}", "/cluster/create", "/storage/create", "/health"):
        for operation in spec["paths"][path].values():
            schema = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert schema["required"] == ["message"]


@pytest.mark.parametrize(("path", "frames", "words"), [
    ("/job/push", ['{"TENSORPOOL_KEY": NaN}'], "finite"),
    ("/job/push", ['{"TENSORPOOL_KEY": "\\ud800"}'], "surrogate"),
    ("/job/push", ['{"TENSORPOOL_KEY": "{key}"}', '{"tp_config": "x", "cluster_id": 1e400}'],
     "finite"),
    ("/job/push", ['{"TENSORPOOL_KEY": "{key}"}',
                   '{"tp_config": "commands = [\\"a\\u0000\\"]", "cluster_id": "c"}'], "NUL"),
    ("/job/listen/job_%00", ['{"TENSORPOOL_KEY": "{key}"}'], "NUL"),
])
def test_socket_frames_are_checked_like_bodies(server, path, frames, words) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(server.url.replace("http://", "ws://") + path) as ws:
        for frame in frames:
            ws.send(frame.replace("{key}", server.admin_key))
        message = json.loads(ws.recv(timeout=10))["message"]
        assert words in message and str(server.data_dir) not in message
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4022
