"""The real ``tp`` CLI (0.0.9) on storage volumes: create/list/info/edit/destroy, attach and
detach (``tp cluster attach/detach``), deletion protection, ``--org``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jobyard.testing import wait_until
from tests.api.dialects.tensorpool.conftest import tp_runner
from tests.api.dialects.tensorpool.test_clusters import (
    fails,
    fields,
    found_id,
    instance_type,
    ok,
    table_row,
)
from tests.api.test_auth import make_user
from tests.api.test_storage import wait_request


def volume(api: httpx.Client, sid: str) -> dict[str, Any]:
    r = api.get(f"/v1/storage/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def cluster_id(server) -> Any:
    """A ready cluster (claimed through the native API), released at the end."""
    with server.client() as api:
        r = api.post("/v1/clusters", json={"instance_type": instance_type(api)["name"]})
        assert r.status_code == 202, r.text
        assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"
        yield r.json()["cluster_id"]
        wait_request(api, api.delete(f"/v1/clusters/{r.json()['cluster_id']}")
                     .json()["request_id"])


def test_create_attach_detach_edit_destroy(tp, api, cluster_id):
    out = ok(tp("storage", "create", "1", "--name", "tp-data", "--wait"))
    sid = found_id("vol", out)
    assert f"Storage volume {sid} created" in out
    v = volume(api, sid)
    assert (v["state"], v["name"], v["size_gb"], v["deletion_protection"]) == \
        ("ready", "tp-data", 1, False)

    listing = ok(tp("storage", "list"))
    listed = dict(zip(table_row(listing, "STORAGE ID"), table_row(listing, sid), strict=True))
    assert (listed["NAME"], listed["SIZE (GB)"], listed["STATUS"]) == ("tp-data", "1", "ready")

    out = ok(tp("cluster", "attach", cluster_id, sid, "--wait"))
    assert f"attached to {cluster_id}" in out
    assert volume(api, sid)["attachments"] == [cluster_id]
    info = fields(ok(tp("storage", "info", sid)))
    assert info["Storage ID"] == sid and info["Attached to"] == cluster_id
    assert info["Size (GB)"] == "1" and info["Deletion protection"] == "no"
    assert api.get(f"/storage/info/{sid}").json()["storage_info"]["cluster_ids"] == [cluster_id]
    fails(tp("storage", "destroy", sid, "--no-input", "--wait"), "detach it first")

    out = ok(tp("cluster", "detach", cluster_id, sid, "--wait"))
    assert f"detached from {cluster_id}" in out
    assert volume(api, sid)["attachments"] == []

    out = ok(tp("storage", "edit", sid, "--name", "tp-data2", "-s", "2"))
    assert "tp-data2" in out and "2 GB" in out
    wait_until(lambda: (v := volume(api, sid))["name"] == "tp-data2" and v["size_gb"] == 2)
    fails(tp("storage", "edit", sid, "-s", "1"), "volumes only grow")

    ok(tp("storage", "destroy", sid, "--no-input", "--wait"))
    assert api.get(f"/v1/storage/{sid}").status_code == 404
    assert sid not in ok(tp("storage", "list"))


def test_deletion_protection_refuses_destroy(tp, api):
    sid = found_id("vol", ok(tp("storage", "create", "1", "--name", "tp-keep",
                                "--deletion-protection", "--wait")))
    assert volume(api, sid)["deletion_protection"] is True
    fails(tp("storage", "destroy", sid, "--no-input", "--wait"), "deletion protection",
          f"tp storage edit {sid} --deletion-protection false")
    r = api.delete(f"/v1/storage/{sid}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "DELETION_PROTECTED"
    assert volume(api, sid)["state"] == "ready"

    out = ok(tp("storage", "edit", sid, "--deletion-protection", "false"))
    assert "Deletion protection disabled" in out
    assert volume(api, sid)["deletion_protection"] is False  # at once: no request
    ok(tp("storage", "destroy", sid, "--no-input", "--wait"))
    assert api.get(f"/v1/storage/{sid}").status_code == 404


def test_wire_codes_org_listing_and_refusals(tp, tp_bin, server, api, cluster_id):
    r = api.post("/storage/create", json={"size": 1, "deletion_protection": False})
    assert r.status_code == 202, r.text
    sid = r.json()["storage_id"]
    assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"
    # attach answers the list the CLI polls; several clusters at once are refused
    r = api.post("/storage/attach", json={"storage_id": sid, "cluster_ids": [cluster_id]})
    assert r.status_code == 202 and len(r.json()["request_ids"]) == 1, r.text
    assert wait_request(api, r.json()["request_ids"][0])["status"] == "COMPLETED"
    r = api.post("/storage/attach", json={"storage_id": sid, "cluster_ids": ["a", "b"]})
    assert r.status_code == 400 and "one cluster at a time" in r.json()["message"]
    r = api.post("/storage/detach", json={"storage_id": sid, "cluster_id": cluster_id})
    assert r.status_code == 202 and r.json()["request_id"].startswith("req_")
    assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"

    # a colleague sees the volume only with --org; another org never
    mate = tp_runner(tp_bin, server, make_user(api, "tp-st-bob", "default")["key"])
    assert "No storage volumes" in ok(mate("storage", "list"))
    assert table_row(ok(mate("storage", "list", "--org")), sid)
    stranger = tp_runner(tp_bin, server, make_user(api, "tp-st-eve", "tp-st-other")["key"])
    assert sid not in ok(stranger("storage", "list", "--org"))
    fails(stranger("storage", "info", sid), "not found")
    fails(stranger("storage", "destroy", sid, "--no-input"), "not found")
    fails(tp("storage", "info", "vol_nosuch"), "storage volume vol_nosuch not found")

    r = api.delete(f"/storage/{sid}")
    assert r.status_code == 202
    assert wait_request(api, r.json()["request_id"])["status"] == "COMPLETED"
