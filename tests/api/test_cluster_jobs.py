"""Jobs on clusters, end to end against a real server: instances, volumes, resize, release."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobyard.testing import ServerProcess, marked_processes, wait_until
from tests.api.helpers import get, log_text, submit, wait_state
from tests.api.test_clusters import ENV, claim, free_gpus
from tests.api.test_storage import TERMINAL, create


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Any:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url, env=ENV)
    srv.start()
    yield srv
    srv.stop()


def follow(api: httpx.Client, rid: str) -> dict[str, Any]:
    """A request followed through the TensorPool dialect's /request/info until terminal."""
    def done() -> dict[str, Any] | None:
        r = api.get(f"/request/info/{rid}")
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in TERMINAL else None

    return wait_until(done, timeout=30, interval=0.02)


def ask(api: httpx.Client, method: str, url: str, **body: Any) -> dict[str, Any]:
    r = api.request(method, url, json=body or None)
    assert r.status_code == 202, r.text
    return follow(api, r.json()["request_id"])


def ready_cluster(api: httpx.Client, count: int) -> str:
    body = claim(api, count)
    assert follow(api, body["request_id"])["status"] == "COMPLETED"
    return body["cluster_id"]


def test_acceptance_jobs_on_a_cluster(api, server):
    cid = ready_cluster(api, 2)
    reserved = {g for i in api.get(f"/v1/clusters/{cid}").json()["instances"] for g in i["gpus"]}
    vol = create(api, "shared-data")
    assert follow(api, vol["request_id"])["status"] == "COMPLETED"
    sid = vol["storage_id"]
    assert ask(api, "POST", f"/v1/storage/{sid}/attach", cluster_id=cid)["status"] == "COMPLETED"
    script = ('echo gpu=$CUDA_VISIBLE_DEVICES; echo $JOBYARD_JOB_ID > '
              '"$JOBYARD_VOLUME_SHARED_DATA/$JOBYARD_JOB_ID"; '
              'test -L mnt/shared-data && echo linked; sleep 30')
    one, two = (submit(api, script, resources={"gpus": 1}, cluster_id=cid) for _ in range(2))
    third = submit(api, "echo gpu=$CUDA_VISIBLE_DEVICES", resources={"gpus": 1}, cluster_id=cid)
    running = [wait_state(api, j["id"], "running") for j in (one, two)]
    gpus = [wait_until(lambda j=j: [x for x in log_text(api, j["id"]) if x.startswith("gpu=")])
            for j in running]
    seen = {int(g[0].removeprefix("gpu=")) for g in gpus}
    assert all(wait_until(lambda j=j: "linked" in log_text(api, j["id"])) for j in running)
    assert len(seen) == 2 and seen == reserved  # each its own GPU, inside the reservation
    assert {j["cluster"]["instance"] for j in running} == {0, 1}
    assert running[0]["cluster"] == {"id": cid, "ephemeral": False, "name": "1xGPU-cluster",
                                     "instance": running[0]["cluster"]["instance"]}
    assert free_gpus(api) == 2  # cluster jobs are not counted twice
    waiting = get(api, third["id"])["waiting"]
    assert waiting["reason"] == "cluster_instance"
    assert waiting["waiting_for"]["cluster"]["id"] == cid
    # shrinking would take a busy instance: refused; growing works
    refused = ask(api, "PATCH", f"/v1/clusters/{cid}", instance_count=1)
    assert refused["status"] == "FAILED" and "idle" in refused["external_message"]
    assert ask(api, "PATCH", f"/v1/clusters/{cid}", instance_count=3)["status"] == "COMPLETED"
    done = wait_state(api, third["id"])
    assert done["state"] == "completed" and done["cluster"]["instance"] == 2
    # the idle instance goes
    assert ask(api, "PATCH", f"/v1/clusters/{cid}", instance_count=2)["status"] == "COMPLETED"
    files = wait_until(lambda: sorted(os.listdir(server.data_dir / "volumes" / sid)) or None)
    assert files == sorted([one["id"], two["id"]])
    # release while jobs run: canceled, no process left, resources free
    assert ask(api, "DELETE", f"/v1/clusters/{cid}")["status"] == "COMPLETED"
    for j in running:
        assert get(api, j["id"])["state"] == "canceled"
        assert marked_processes(f"{j['id']}.1") == []
    assert api.get(f"/v1/clusters/{cid}").json()["state"] == "released"
    assert wait_until(lambda: free_gpus(api) == 4)
    # data survives the jobs and the cluster; the released cluster has no attachment left
    assert sorted(os.listdir(server.data_dir / "volumes" / sid)) == files
    assert api.get(f"/v1/storage/{sid}").json()["attachments"] == []
    assert ask(api, "DELETE", f"/v1/storage/{sid}")["status"] == "COMPLETED"


def test_detach_then_destroy(api, server):
    cid = ready_cluster(api, 1)
    vol = create(api, "scratch")
    assert follow(api, vol["request_id"])["status"] == "COMPLETED"
    sid = vol["storage_id"]
    assert ask(api, "POST", f"/v1/storage/{sid}/attach", cluster_id=cid)["status"] == "COMPLETED"
    assert ask(api, "POST", f"/v1/storage/{sid}/detach", cluster_id=cid)["status"] == "COMPLETED"
    assert ask(api, "DELETE", f"/v1/storage/{sid}")["status"] == "COMPLETED"
    assert ask(api, "DELETE", f"/v1/clusters/{cid}")["status"] == "COMPLETED"


def test_submit_validation(api, server):
    r = api.post("/v1/jobs", json={"command": "true", "cluster_id": "cl_nope"})
    assert r.status_code == 404, r.text
    cid = ready_cluster(api, 1)
    r = api.post("/v1/jobs", json={"command": "true", "cluster_id": cid,
                                   "resources": {"gpus": 2}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "UNSCHEDULABLE", r.text
    assert ask(api, "DELETE", f"/v1/clusters/{cid}")["status"] == "COMPLETED"
    r = api.post("/v1/jobs", json={"command": "true", "cluster_id": cid})
    assert r.status_code == 409, r.text


def test_a_job_without_a_cluster_runs_on_an_ephemeral_one(api, server):
    job = wait_state(api, submit(api, "true", resources={"gpus": 1})["id"])
    assert job["state"] == "completed"
    assert job["cluster"]["ephemeral"] is True and job["cluster"]["id"] == f"ephemeral-{job['id']}"
    assert len(job["cluster"]["gpus"]) == 1


def test_a_volume_written_past_its_size_is_flagged_and_made_read_only(api, server):
    cid = ready_cluster(api, 1)
    vol = create(api, "small")
    assert follow(api, vol["request_id"])["status"] == "COMPLETED"
    sid = vol["storage_id"]
    assert ask(api, "POST", f"/v1/storage/{sid}/attach", cluster_id=cid)["status"] == "COMPLETED"
    # a sparse file: 2 GB apparent size on a 1 GB volume, measured when the job ends
    job = submit(api, 'truncate -s 2G "$JOBYARD_VOLUME_SMALL/big"', cluster_id=cid)
    assert wait_state(api, job["id"])["state"] == "completed"
    assert wait_until(lambda: api.get(f"/v1/storage/{sid}").json()["over_quota"])
    root = Path(server.data_dir) / "volumes" / sid
    assert not root.stat().st_mode & stat.S_IWUSR
    assert ask(api, "DELETE", f"/v1/clusters/{cid}")["status"] == "COMPLETED"
