"""Clusters as reservations of the inventory: claim, resize, quota, attach, release, crash."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import get, submit, wait_state
from tests.api.test_storage import create, wait_request
from tests.conftest import drop_pg_database, pg_database

TYPES = json.dumps({"1xGPU": {"gpus": 1, "cpus": 1, "memory_mb": 256},
                    "cpu-1": {"gpus": 0, "cpus": 1, "memory_mb": 256}})
ENV = {"JOBYARD_INSTANCE_TYPES": TYPES, "JOBYARD_CPUS": "16", "JOBYARD_MEMORY_MB": "64000"}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Any:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url, env=ENV)
    srv.start()
    yield srv
    srv.stop()


def free_gpus(api: httpx.Client) -> int:
    text = api.get("/metrics").text
    return int(float(re.search(r'^jobyard_free\{resource="gpus"\} (\S+)$', text, re.M)[1]))


def claim(api: httpx.Client, count: int, itype: str = "1xGPU", **body: Any) -> dict[str, Any]:
    r = api.post("/v1/clusters", json={"instance_type": itype, "instance_count": count, **body})
    assert r.status_code == 202, r.text
    assert r.json()["request"]["type"] == "CLUSTER_CLAIM"
    return r.json()


def change(api: httpx.Client, method: str, url: str, **body: Any) -> dict[str, Any]:
    r = api.request(method, url, json=body or None)
    assert r.status_code == 202, r.text
    return wait_request(api, r.json()["request_id"])


def test_claim_resize_release_and_jobs_use_only_the_rest(api, server):
    body = claim(api, 2, name="train")
    done = wait_request(api, body["request_id"])
    assert done["status"] == "COMPLETED", done
    info = api.get(f"/request/info/{body['request_id']}").json()
    assert info["status"] == "COMPLETED" and info["object_id"] == body["cluster_id"]
    cid = body["cluster_id"]
    c = api.get(f"/v1/clusters/{cid}").json()
    assert c["state"] == "ready" and c["name"] == "train" and len(c["instances"]) == 2
    assert wait_until(lambda: free_gpus(api) == 2)
    # grow while free, refuse a grow beyond the machine, shrink
    assert change(api, "PATCH", f"/v1/clusters/{cid}", instance_count=3)["status"] == "COMPLETED"
    assert free_gpus(api) == 1
    failed = change(api, "PATCH", f"/v1/clusters/{cid}", instance_count=6)
    assert failed["status"] == "FAILED" and "not enough free" in failed["external_message"]
    assert api.get(f"/v1/clusters/{cid}").json()["instance_count"] == 3
    done = change(api, "PATCH", f"/v1/clusters/{cid}", instance_count=2, name="t2")
    assert done["status"] == "COMPLETED"
    c = api.get(f"/v1/clusters/{cid}").json()
    assert (c["name"], c["instance_count"], len(c["instances"])) == ("t2", 2, 2)
    assert free_gpus(api) == 2
    # an ordinary job that needs the reserved GPUs waits for them
    job = submit(api, "true", resources={"gpus": 3})
    # What a queued job waits for is read off the free resources the daemon publishes on its
    # next look after the shrink: until then a read may show an older figure.
    waiting = wait_until(lambda: (w := get(api, job["id"])["waiting"])
                         and w.get("waiting_for", {}).get("gpus") == {"requested": 3, "free": 2}
                         and w)
    assert waiting["reason"] == "resources"
    assert cid in {x["id"] for x in api.get("/v1/clusters").json()["items"]}
    assert change(api, "DELETE", f"/v1/clusters/{cid}")["status"] == "COMPLETED"
    assert api.get(f"/v1/clusters/{cid}").json()["state"] == "released"
    assert wait_state(api, job["id"])["state"] == "completed"
    assert wait_until(lambda: free_gpus(api) == 4)
    r = api.delete(f"/v1/clusters/{cid}")
    assert r.status_code == 409


def test_quota_is_refused_at_request_time(api, server):
    r = api.put("/v1/orgs/default/quota", json={"max_gpus": 3})
    assert r.status_code == 200 and r.json()["max_gpus"] == 3
    first = claim(api, 2)
    r = api.post("/v1/clusters", json={"instance_type": "1xGPU", "instance_count": 2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert "quota" in r.json()["error"]["message"]
    assert claim(api, 1, itype="cpu-1")  # no GPUs: within any quota
    wait_request(api, first["request_id"])
    r = api.patch(f"/v1/clusters/{first['cluster_id']}", json={"instance_count": 4})
    assert r.status_code == 409 and r.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert api.get("/v1/orgs/default/quota").json()["claimed_gpus"] == 2
    assert api.put("/v1/orgs/default/quota", json={"max_gpus": None}).status_code == 200
    change(api, "DELETE", f"/v1/clusters/{first['cluster_id']}")
    r = api.post("/v1/clusters", json={"instance_type": "8xB200"})
    assert r.status_code == 422


def test_attach_detach_and_destroy_refused_while_attached(api, server):
    vol = create(api, "shared")
    wait_request(api, vol["request_id"])
    sid = vol["storage_id"]
    body = claim(api, 1, itype="cpu-1")
    wait_request(api, body["request_id"])
    cid = body["cluster_id"]
    done = change(api, "POST", f"/v1/storage/{sid}/attach", cluster_id=cid)
    assert done["status"] == "COMPLETED", done
    assert api.get(f"/v1/storage/{sid}").json()["attachments"] == [cid]
    assert api.get(f"/v1/clusters/{cid}").json()["attachments"] == [sid]
    r = api.delete(f"/v1/storage/{sid}")
    assert r.status_code == 409
    r = api.post(f"/v1/storage/{sid}/attach", json={"cluster_id": cid})
    assert r.status_code == 409
    assert change(api, "POST", f"/v1/storage/{sid}/detach", cluster_id=cid)["status"] == (
        "COMPLETED")
    assert api.get(f"/v1/storage/{sid}").json()["attachments"] == []
    assert change(api, "DELETE", f"/v1/storage/{sid}")["status"] == "COMPLETED"
    change(api, "DELETE", f"/v1/clusters/{cid}")


def test_a_claim_cut_by_a_crash_completes_and_nothing_is_held_twice(database_url,
                                                                    tmp_path_factory):
    data = tmp_path_factory.mktemp("crash")
    db = pg = None
    if database_url.startswith("postgresql"):  # its own database: the module's server leads
        db, *pg = pg_database()
    srv = ServerProcess(data, database_url=db, env=ENV).start()
    with srv.client() as api:
        first = wait_request(api, claim(api, 1)["request_id"])
    srv.kill()
    srv = ServerProcess(data, database_url=db,
                        env={**ENV, "JOBYARD_REQUEST_PROCESSING_DELAY_S": "60"}).start()
    with srv.client() as api:
        body = claim(api, 2)
        wait_until(lambda: api.get(f"/v1/requests/{body['request_id']}").json()["status"]
                   == "PROCESSING")
    srv.kill()
    srv = ServerProcess(data, database_url=db, env=ENV).start()
    try:
        with srv.client() as api:
            assert wait_request(api, body["request_id"])["status"] == "COMPLETED"
            clusters = [api.get(f"/v1/clusters/{cid}").json()
                        for cid in (first["object_id"], body["cluster_id"])]
            gpus = [g for c in clusters for inst in c["instances"] for g in inst["gpus"]]
            assert sorted(gpus) == sorted(set(gpus)) and len(gpus) == 3
            assert wait_until(lambda: free_gpus(api) == 1)
    finally:
        srv.stop()
        if pg:
            drop_pg_database(*pg)
