"""One core behind four APIs: a job submitted through any of them is visible, with the same
state, through the other three (native, TensorPool, TensorOne, Integrate.io)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.testing import ServerProcess, client_venv, wait_until
from tests.api.dialects.tensorpool.conftest import REQUIREMENTS as TP_CLI
from tests.api.dialects.tensorpool.conftest import tp_runner

ROOT = Path(__file__).resolve().parents[3]
ORG = "default"  # the bootstrap admin's org: the Integrate.io account id
XPLENTY = {"Accept": "application/vnd.xplenty+json; version=2"}
# What each API calls a core state (its own vocabulary, from its seed page).
WORDS = {
    "running": {"tensorpool": "running", "tensorone": "running", "xplenty": "running"},
    "canceled": {"tensorpool": "canceled", "tensorone": "cancelled", "xplenty": "stopped"},
    "completed": {"tensorpool": "completed", "tensorone": "completed", "xplenty": "completed"},
}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url,
                        env={"JOBYARD_CPUS": "8"})
    srv.start()
    yield srv
    srv.stop()


def xplenty(server: ServerProcess) -> httpx.Client:
    basic = base64.b64encode(server.admin_key.encode()).decode()
    return httpx.Client(base_url=f"{server.url}/{ORG}/api", timeout=10,
                        headers={**XPLENTY, "Authorization": f"Basic {basic}"})


def views(server: ServerProcess, uid: str, number: int) -> dict[str, str]:
    """The job's state as each of the four APIs reports it."""
    with server.client() as api, xplenty(server) as xp:
        return {
            "native": api.get(f"/v1/jobs/{uid}").json()["state"],
            "tensorpool": api.get(f"/job/info/{uid}").json()["job_info"]["status"],
            "tensorone": api.get(f"/v2/jobs/{uid}/status").json()["status"],
            "xplenty": xp.get(f"/jobs/{number}").json()["status"],
        }


def consistent(server: ServerProcess, uid: str, number: int, state: str) -> dict[str, str]:
    want = {"native": state, **WORDS[state]}
    return wait_until(lambda: (v := views(server, uid, number)) == want and v, timeout=30,
                      interval=0.1)


def test_a_job_from_any_api_is_the_same_job_in_all_four(server: ServerProcess,
                                                        tmp_path: Path) -> None:
    tp = tp_runner(client_venv(TP_CLI, ROOT) / "bin" / "tp", server)
    with server.client() as api, xplenty(server) as xp:
        made = xp.post("/clusters", json={"type": "cpu-1", "nodes": 2, "name": "xd"})
        assert made.status_code == 201, made.text
        cluster_number = made.json()["id"]
        wait_until(lambda: xp.get(f"/clusters/{cluster_number}").json()["status"] == "available",
                   timeout=20)
        cluster_uid = next(c["id"] for c in api.get("/v1/clusters").json()["items"]
                           if c["name"] == "xd")
        assert api.post("/v1/endpoints", json={"name": "xd-sleeper", "command": "sleep 60"}
                        ).status_code == 201
        package = api.post("/v1/packages", json={"name": "xd-pkg", "command": "sleep 60"})
        assert package.status_code == 201, package.text

        jobs: dict[str, str] = {}  # submitted through -> uid
        jobs["native"] = api.post("/v1/jobs", json={"command": "sleep 60"}).json()["id"]
        (tmp_path / "job.tp.toml").write_text('commands = ["sleep 60"]\n')
        push = tp("job", "push", "job.tp.toml", cluster_uid, cwd=tmp_path)
        assert push.returncode == 0, push.stdout
        jobs["tensorpool"] = re.search(r"^Job ID: (\S+)$", push.stdout, re.M).group(1)
        run = api.post("/v2/endpoints/ep_xd-sleeper/run", json={"input": {"n": 1}})
        assert run.status_code == 200, run.text
        jobs["tensorone"] = run.json()["jobId"]
        run = xp.post("/jobs", json={"cluster_id": cluster_number,
                                     "package_id": package.json()["id"]})
        assert run.status_code == 201, run.text
        number = run.json()["id"]
        jobs["xplenty"] = next(j["id"] for j in api.get("/v1/jobs").json()["items"]
                               if j["number"] == number)
        numbers = {via: api.get(f"/v1/jobs/{uid}").json()["number"] for via, uid in jobs.items()}

        for via, uid in jobs.items():
            consistent(server, uid, numbers[via], "running")

        # Each is canceled through another API than the one that made it.
        assert api.post(f"/job/cancel/{jobs['native']}").status_code == 202
        assert xp.delete(f"/jobs/{numbers['tensorpool']}").status_code == 200
        assert api.post(f"/v1/jobs/{jobs['tensorone']}/cancel").status_code == 202
        assert api.post(f"/job/cancel/{jobs['xplenty']}").status_code == 202
        for via, uid in jobs.items():
            consistent(server, uid, numbers[via], "canceled")

        quick = api.post("/v1/jobs", json={"command": "true"}).json()
        consistent(server, quick["id"], quick["number"], "completed")
        assert api.get(f"/v2/jobs/{quick['id']}/status").json()["progress"] == 100
        assert xp.get(f"/jobs/{quick['number']}").json()["progress"] == 1.0
        listed = [j["id"] for j in xp.get("/jobs", params={"limit": 100}).json()]
        assert quick["number"] in listed and all(n in listed for n in numbers.values())
        xp.delete(f"/clusters/{cluster_number}")
