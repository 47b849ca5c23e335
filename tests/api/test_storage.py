"""Storage volumes and async requests over HTTP: native /v1 and TensorPool's /request/info."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jobyard.core.volumes import GB
from jobyard.testing import ServerProcess, wait_until
from tests.api.test_auth import make_user

TERMINAL = {"COMPLETED", "FAILED"}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Any:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url,
                        env={"JOBYARD_STORAGE_USAGE_INTERVAL_S": "0.2"})
    srv.start()
    yield srv
    srv.stop()


def wait_request(api: httpx.Client, rid: str, timeout: float = 20) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        r = api.get(f"/v1/requests/{rid}")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in TERMINAL else None

    return wait_until(done, timeout=timeout, interval=0.02)


def create(api: httpx.Client, name: str, size_gb: int = 1) -> dict[str, Any]:
    r = api.post("/v1/storage", json={"name": name, "size_gb": size_gb})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["request_id"].startswith("req_") and body["storage_id"].startswith("vol_")
    assert body["request"]["type"] == "STORAGE_CREATE"
    return body


def test_create_completes_through_both_dialects(api, server):
    body = create(api, "data")
    done = wait_request(api, body["request_id"])
    assert done["status"] == "COMPLETED" and done["object_id"] == body["storage_id"]
    r = api.get(f"/v1/requests/{body['request_id']}")
    assert "retry-after" not in r.headers
    info = api.get(f"/request/info/{body['request_id']}")
    assert info.status_code == 200 and "retry-after" not in info.headers
    assert info.json() == {
        "request_id": body["request_id"], "request_type": "STORAGE_CREATE",
        "status": "COMPLETED", "created_at": done["created_at"],
        "object_id": body["storage_id"], "external_message": done["external_message"],
    }
    vol = api.get(f"/v1/storage/{body['storage_id']}").json()
    assert vol["state"] == "ready" and vol["size_gb"] == 1 and vol["size_bytes"] == GB
    assert (server.data_dir / "volumes" / body["storage_id"]).is_dir()
    listed = api.get("/v1/storage").json()["items"]
    assert body["storage_id"] in {v["id"] for v in listed}
    reqs = api.get("/v1/requests", params={"limit": 5}).json()["items"]
    assert reqs[0]["id"] == body["request_id"]


def test_names_are_unique_per_org_and_inputs_are_checked(api, server):
    wait_request(api, create(api, "dup")["request_id"])
    r = api.post("/v1/storage", json={"name": "dup", "size_gb": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    for bad in ({"name": "x", "size_gb": 0}, {"name": "bad name", "size_gb": 1},
                {"name": "x", "size_gb": "big"}, {"name": "x"}):
        r = api.post("/v1/storage", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert {"loc", "msg", "type"} <= set(r.json()["detail"][0])


def test_edit_renames_and_grows_but_never_shrinks(api, server):
    vol = create(api, "grow", size_gb=2)
    wait_request(api, vol["request_id"])
    sid = vol["storage_id"]
    r = api.patch(f"/v1/storage/{sid}", json={"size_gb": 1})
    assert r.status_code == 422 and "only grow" in r.json()["detail"][0]["msg"]
    r = api.patch(f"/v1/storage/{sid}", json={"name": "grown", "size_gb": 5})
    assert r.status_code == 202, r.text
    assert r.json()["request"]["type"] == "STORAGE_EDIT"
    assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"
    got = api.get(f"/v1/storage/{sid}").json()
    assert (got["name"], got["size_gb"]) == ("grown", 5)
    assert api.patch(f"/v1/storage/{sid}", json={}).status_code == 422


def test_destroy_removes_the_directory_and_the_volume(api, server):
    vol = create(api, "gone")
    wait_request(api, vol["request_id"])
    sid = vol["storage_id"]
    (server.data_dir / "volumes" / sid / "f").write_text("x")
    r = api.delete(f"/v1/storage/{sid}")
    assert r.status_code == 202 and r.json()["request"]["type"] == "STORAGE_DESTROY"
    assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"
    assert api.get(f"/v1/storage/{sid}").status_code == 404
    assert not (server.data_dir / "volumes" / sid).exists()
    assert api.delete(f"/v1/storage/{sid}").status_code == 404


def test_over_quota_is_flagged_after_writing_past_the_size(api, server):
    vol = create(api, "full")
    wait_request(api, vol["request_id"])
    sid = vol["storage_id"]
    with open(server.data_dir / "volumes" / sid / "big", "wb") as f:
        f.truncate(GB + 1)  # sparse: the apparent size is what counts

    def flagged() -> dict[str, Any] | None:
        got = api.get(f"/v1/storage/{sid}").json()
        return got if got["over_quota"] else None

    got = wait_until(flagged, timeout=10)
    assert got["used_bytes"] == GB + 1


def test_other_orgs_get_404_in_both_dialects(api, server):
    vol = create(api, "mine")
    rid, sid = vol["request_id"], vol["storage_id"]
    key = make_user(api, "stranger", "elsewhere")["key"]
    with server.client(key) as other:
        assert other.get(f"/v1/storage/{sid}").status_code == 404
        assert other.delete(f"/v1/storage/{sid}").status_code == 404
        assert other.get(f"/v1/requests/{rid}").status_code == 404
        assert rid not in {r["id"] for r in other.get("/v1/requests").json()["items"]}
        assert sid not in {v["id"] for v in other.get("/v1/storage").json()["items"]}
        r = other.get(f"/request/info/{rid}")
        assert r.status_code == 404 and "not found" in r.json()["message"]


def test_tensorpool_errors_carry_message_and_422_is_fastapi_shaped(api, server):
    r = api.get("/request/info/req_doesnotexist")
    assert r.status_code == 404 and r.json()["message"]
    r = httpx.get(server.url + "/request/info/req_x")
    assert r.status_code == 401 and r.json()["message"]
    r = api.get("/request/info/bad.id")
    assert r.status_code == 422
    [item] = r.json()["detail"]
    assert item["loc"] == ["path", "request_id"] and item["msg"] and item["type"]
