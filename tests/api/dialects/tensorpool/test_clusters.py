"""The real ``tp`` CLI (0.0.9) on clusters: create/list/info/edit/destroy, deletion protection."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import httpx

from jobyard.testing import wait_until
from tests.api.dialects.tensorpool.conftest import tp_runner
from tests.api.test_auth import make_user


# helpers shared by the TensorPool CLI tests ---------------------------------------------------
def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def fails(r: subprocess.CompletedProcess, *texts: str) -> str:
    """The command exited 1 and printed each of ``texts`` (and no traceback)."""
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    for text in texts:
        assert text in r.stdout, f"{text!r} not in:\n{r.stdout}"
    return r.stdout


def found_id(prefix: str, text: str) -> str:
    m = re.search(rf"\b{prefix}_[a-z0-9]+\b", text)
    assert m, f"no {prefix}_ id in:\n{text}"
    return m[0]


def table_row(text: str, first: str) -> list[str]:
    """The cells (stripped) of the TSV row whose first cell is ``first``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def fields(text: str) -> dict[str, str]:
    """A FIELD/VALUE table as a dict."""
    return {cells[0].strip(): cells[1].strip() for line in text.splitlines()
            if len(cells := line.split("\t")) == 2}


def instance_type(api: httpx.Client) -> dict[str, Any]:
    """An instance type of the server's catalog, one with a GPU when there is one."""
    items = api.get("/v1/instance-types").json()["items"]
    assert items
    return max(items, key=lambda t: (t["gpus"] > 0, -t["gpus"]))


def cluster(api: httpx.Client, cid: str) -> dict[str, Any]:
    r = api.get(f"/v1/clusters/{cid}")
    assert r.status_code == 200, r.text
    return r.json()


# tests -----------------------------------------------------------------------------------------
def test_create_list_info_edit_destroy(tp, api):
    it = instance_type(api)
    out = ok(tp("cluster", "create", it["name"], "--name", "tp-train", "--wait"))
    cid = found_id("clu", out)
    assert "is ready" in out
    c = cluster(api, cid)
    assert (c["state"], c["name"], c["instance_type"], c["instance_count"]) == \
        ("ready", "tp-train", it["name"], 1)
    assert c["deletion_protection"] is False

    listing = ok(tp("cluster", "list"))
    listed = dict(zip(table_row(listing, "CLUSTER ID"), table_row(listing, cid), strict=True))
    assert listed["NAME"] == "tp-train" and listed["INSTANCE TYPE"] == it["name"]
    assert (listed["NODES"], listed["GPUS"], listed["STATUS"]) == ("1", str(it["gpus"]), "ready")
    assert listed["DELETION PROTECTION"] == "no"
    per_instance = table_row(ok(tp("cluster", "list", "--instances")), cid)
    assert per_instance[1] == "0" and "ready" in per_instance

    info = fields(ok(tp("cluster", "info", cid)))
    assert info["Cluster ID"] == cid and info["Status"] == "ready"
    assert info["Instance type"] == it["name"] and info["GPUs"] == str(it["gpus"])
    body = api.get(f"/cluster/info/{cid}").json()
    assert body["cluster_info"]["status"] == "ready"
    assert body["cluster_info"]["instances"][0]["instance"] == 0

    out = ok(tp("cluster", "edit", cid, "--name", "tp-renamed"))
    assert "tp-renamed" in out
    wait_until(lambda: cluster(api, cid)["name"] == "tp-renamed")

    out = ok(tp("cluster", "destroy", cid, "--no-input", "--wait"))
    assert f"Cluster {cid} released" in out
    assert cluster(api, cid)["state"] == "released"
    assert cid not in ok(tp("cluster", "list"))


def test_deletion_protection_refuses_destroy_in_both_dialects(tp, api):
    it = instance_type(api)
    cid = found_id("clu", ok(tp("cluster", "create", it["name"], "--deletion-protection",
                                "--wait")))
    assert cluster(api, cid)["deletion_protection"] is True
    assert fields(ok(tp("cluster", "info", cid)))["Deletion protection"] == "yes"

    fails(tp("cluster", "destroy", cid, "--no-input", "--wait"), "deletion protection",
          f"tp cluster edit {cid} --deletion-protection false")
    r = api.delete(f"/cluster/{cid}")
    assert r.status_code == 400 and "deletion protection" in r.json()["message"]
    r = api.delete(f"/v1/clusters/{cid}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "DELETION_PROTECTED"
    assert cluster(api, cid)["state"] == "ready"

    out = ok(tp("cluster", "edit", cid, "--deletion-protection", "false"))
    assert "Deletion protection disabled" in out
    assert cluster(api, cid)["deletion_protection"] is False  # at once: no request
    ok(tp("cluster", "destroy", cid, "--no-input", "--wait"))
    assert cluster(api, cid)["state"] == "released"


def test_refusals_carry_a_message(tp, tp_bin, server, api):
    out = fails(tp("cluster", "create", "no-such-type"), "unknown instance_type")
    assert instance_type(api)["name"] in out
    fails(tp("cluster", "create", instance_type(api)["name"], "--container", "img:1"),
          "container images are not supported")
    fails(tp("cluster", "info", "clu_nosuch"), "cluster clu_nosuch not found")
    fails(tp("cluster", "destroy", "clu_nosuch", "--no-input"), "not found")
    r = api.patch("/cluster/edit/clu_nosuch", json={})
    assert r.status_code == 400 and "nothing to edit" in r.json()["message"]
    # another org neither sees nor destroys a cluster
    r = api.post("/cluster/create", json={"instance_type": instance_type(api)["name"],
                                          "num_nodes": None, "deletion_protection": False})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["request_id"].startswith("req_") and body["cluster_id"].startswith("clu_")
    cid = body["cluster_id"]
    other = tp_runner(tp_bin, server, make_user(api, "tp-cl-eve", "tp-cl-other")["key"])
    fails(other("cluster", "destroy", cid, "--no-input"), "not found")
    assert cid not in ok(other("cluster", "list", "--org"))
    wait_until(lambda: cluster(api, cid)["state"] == "ready")
    r = api.delete(f"/cluster/{cid}")
    assert r.status_code == 202 and r.json()["request_id"].startswith("req_")
    wait_until(lambda: cluster(api, cid)["state"] == "released")
