"""The published ``xplenty`` 2.0.0 SDK, unmodified but for its Python 3 shims, against a real
server: what a user of Integrate.io's Python client does, end to end."""

from __future__ import annotations

import httpx

from jobyard.testing import ServerProcess, marked_processes, wait_until
from tests.api.dialects.xplenty.conftest import Sdk, make_package, sdk_runner
from tests.api.dialects.xplenty.seed import check_job

# Writes what reached its environment into an output file (one line per variable).
WRITE_VARS = ("{ echo \"$GREETING\"; echo \"$TARGET\"; echo \"$RUN_TAG\"; } "
          "> \"$JOBYARD_OUTPUT_DIR/vars.txt\"")
STOP_ORDER = ["pending_stoppage", "stopping", "stopped"]  # what a stopped job reads, in turn


def test_a_bad_key_is_refused(sdk_python, server: ServerProcess) -> None:
    bad = sdk_runner(sdk_python, server, key="jy_not_a_key")("limits")
    assert bad == {"error": "unknown or revoked API key", "status": 401}
    other = sdk_runner(sdk_python, server, account="not-my-account")("limits")
    assert other == {"error": "account not-my-account not found", "status": 404}


def test_a_package_runs_on_a_cluster_with_variables(sdk: Sdk, api: httpx.Client,
                                                    xapi: httpx.Client) -> None:
    limits = sdk("limits")
    assert limits["limit"] == 5000 and 0 < limits["remaining"] <= 5000

    cluster = sdk("create_cluster", cluster_type="production", nodes=1,
                  cluster_name="sdk-cluster", cluster_description="made by the SDK",
                  terminate_on_idle=False, time_to_idle=3600)
    assert cluster["status"] == "pending" and cluster["nodes"] == 1
    assert cluster["name"] == "sdk-cluster" and cluster["description"] == "made by the SDK"
    assert cluster["created_at"] is not None  # dates parse (the dateutil shim works)
    cluster = sdk("wait_cluster", id=cluster["id"], status=["available", "error"])
    assert cluster["status"] == "available" and cluster["available_since"] is not None
    listed = sdk("clusters", offset=0, limit=20)
    assert cluster["id"] in [c["id"] for c in listed]
    assert sdk("clusters", offset=0, limit=1)[0]["id"] == max(c["id"] for c in listed)

    package = make_package(api, "sdk-vars", WRITE_VARS,
                           variables={"GREETING": "'hello'", "TARGET": "default-target"})
    assert sdk("package", id=package["id"])["variables"] == package["variables"]
    assert package["id"] in [p["id"] for p in sdk("packages", offset=0, limit=20)]

    job = sdk("add_job", cluster_id=cluster["id"], package_id=package["id"],
              vars={"TARGET": "'from the run'"}, dynamic_vars={"RUN_TAG": "dyn-1"})
    assert job["status"] in ("queued", "pending", "running") and job["missing"] == []
    assert job["variables"] == {"TARGET": "'from the run'"}
    assert job["dynamic_variables"] == {"RUN_TAG": "dyn-1"}
    assert (job["cluster_id"], job["package_id"]) == (cluster["id"], package["id"])
    assert job["completed_at"] is None and 0.0 <= job["progress"] < 1.0

    done = sdk("wait_job", id=job["id"], status=["completed", "failed", "stopped"])
    assert done["status"] == "completed", done
    assert done["progress"] == 1.0 and done["completed_at"] is not None
    assert done["outputs_count"] == 1 and done["errors"] == ""
    raw = check_job(xapi.get(f"/jobs/{job['id']}").json())  # what the SDK parsed, on the wire
    assert raw["outputs"][0]["name"] == "vars.txt" and raw["outputs"][0]["records_count"] == 3
    assert job["id"] in [j["id"] for j in sdk("jobs")]
    late = sdk("stop_job", id=job["id"])
    assert late["status"] == 409 and "already ended (completed)" in late["error"]

    # The variables reached the job's environment: defaults < variables < dynamic variables,
    # string literals without their quotes.
    native = api.get(f"/v1/jobs/{job['id']}").json()
    text = api.get(f"/v1/jobs/{native['id']}/outputs/vars.txt").text
    assert text == "hello\nfrom the run\ndyn-1\n"

    gone = sdk("terminate_cluster", id=cluster["id"])
    assert gone["status"] == "pending_terminate"
    gone = sdk("wait_cluster", id=cluster["id"], status=["terminated"])
    assert gone["status"] == "terminated" and gone["terminated_at"] is not None


def test_a_long_job_is_stopped(sdk: Sdk, api: httpx.Client, xapi: httpx.Client) -> None:
    cluster = sdk("wait_cluster", id=sdk("create_cluster", cluster_type="sandbox", nodes=3,
                                         cluster_name="", cluster_description="")["id"],
                  status=["available", "error"])
    assert cluster["status"] == "available" and cluster["nodes"] == 1  # a sandbox has one
    package = make_package(api, "sdk-long", "sleep 300")
    job = sdk("add_job", cluster_id=cluster["id"], package_id=package["id"])
    running = sdk("wait_job", id=job["id"], status=["running", "failed"])
    assert running["status"] == "running" and running["started_at"] is not None
    native = api.get(f"/v1/jobs/{job['id']}").json()
    marker = f"{native['id']}.{native['attempt']}"
    wait_until(lambda: marked_processes(marker), timeout=10)

    stopped = sdk("stop_job", id=job["id"])  # the SDK returns the raw JSON here
    assert stopped["status"] == "pending_stoppage" and stopped["id"] == job["id"]
    # The daemon sends the stop when it next looks (on a loaded machine, a while later): reads
    # show pending_stoppage until then, then stopping, then stopped, in that order only.
    seen = [stopped["status"]]

    def stop_sent() -> bool:
        status = check_job(xapi.get(f"/jobs/{job['id']}").json())["status"]
        if status != seen[-1]:
            seen.append(status)
        assert status in STOP_ORDER, seen
        return status != "pending_stoppage"

    wait_until(stop_sent, timeout=20, interval=0.02)
    assert seen == sorted(seen, key=STOP_ORDER.index), seen  # never back to an earlier one
    final = sdk("wait_job", id=job["id"], status=["stopped", "failed", "completed"])
    assert final["status"] == "stopped" and final["completed_at"] is not None
    assert final["progress"] == 0.0 and final["errors"] == ""
    assert marked_processes(marker) == []
    check_job(xapi.get(f"/jobs/{job['id']}").json())
    assert sdk("stop_job", id=job["id"])["status"] == "stopped"  # a repeat changes nothing

    missing = sdk("get_job", id=987654)
    assert missing == {"error": "job 987654 not found", "status": 404}
    sdk("terminate_cluster", id=cluster["id"])
    assert sdk("wait_cluster", id=cluster["id"], status=["terminated"])["status"] == "terminated"


def test_schedules_are_read_through_the_sdk(sdk: Sdk, api: httpx.Client) -> None:
    package = make_package(api, "sdk-scheduled", "true", variables={"A": "1"})
    r = api.post("/v1/schedules", json={
        "name": "nightly", "package": package["id"], "interval_amount": 1,
        "interval_unit": "days", "start_at": "2099-01-01T02:00:00Z", "variables": {"A": "2"}})
    assert r.status_code == 201, r.text
    schedule = sdk("schedule", id=r.json()["id"])
    assert schedule["missing"] == [] and schedule["status"] == "enabled"
    assert (schedule["interval_amount"], schedule["interval_unit"]) == (1, "days")
    assert schedule["next_run_at"].startswith("2099-01-01T02:00:00")
    assert schedule["variables"] == {"A": "2"} and schedule["execution_count"] == 0
    assert schedule["task"]["packages"] == [{"package_id": package["id"],
                                             "variables": {"A": "2"}}]
    assert schedule["id"] in [s["id"] for s in sdk("schedules")]
