"""Endpoints and runs: ``/v1/endpoints`` (API, SDK, CLI), ``POST /v2/endpoints/{id}/run`` and
``runsync`` (input as a file and an env var, priority, tags, webhook, time limit, retries), and
the status of jobs in every state, against a real server running real jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import jobyard
from jobyard.cli.main import app
from jobyard.sdk import settings
from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.tensorone.conftest import (
    WORKER,
    create_endpoint,
    outsider_key,
    run,
    status,
    wait_status,
    when,
)
from tests.api.helpers import submit, wait_state
from tests.events.receiver import Receiver


@pytest.fixture(scope="module")
def ep(server: ServerProcess) -> str:
    with server.client() as api:
        return create_endpoint(api, "worker")["id"]


@pytest.fixture(scope="module")
def outsider(server: ServerProcess) -> str:
    return outsider_key(server, "other-org")


@pytest.fixture(scope="module")
def receiver(server: ServerProcess) -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


# /v1/endpoints -----------------------------------------------------------------------------------
def test_endpoints_api(server: ServerProcess, outsider: str) -> None:
    with server.client() as api:
        r = api.post("/v1/endpoints", json={
            "name": "resize-2", "command": "echo hi", "env": {"MODE": "fast"},
            "resources": {"gpus": 2, "cpus": 0.5, "memory_mb": 256}, "time_limit_s": 60})
        assert r.status_code == 201, r.text
        created = r.json()
        assert r.headers["location"] == "/v1/endpoints/ep_resize-2"
        assert {k: created[k] for k in ("id", "name", "command", "env", "resources",
                                        "time_limit_s", "run_url")} == {
            "id": "ep_resize-2", "name": "resize-2", "command": "echo hi",
            "env": {"MODE": "fast"}, "resources": {"gpus": 2, "cpus": 0.5, "memory_mb": 256},
            "time_limit_s": 60.0, "run_url": "/v2/endpoints/ep_resize-2/run"}
        assert api.get("/v1/endpoints/ep_resize-2").json() == created
        assert "ep_resize-2" in [e["id"] for e in api.get("/v1/endpoints").json()["items"]]

        again = api.post("/v1/endpoints", json={"name": "resize-2", "command": "true"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
        for bad, code in (({"name": "no spaces", "command": "true"}, "INVALID_INPUT"),
                          ({"name": "x", "command": ""}, "INVALID_INPUT"),
                          ({"name": "x", "command": "true", "env": {"TENSORONE_INPUT": "1"}},
                           "INVALID_INPUT"),
                          ({"name": "x", "command": "true", "resources": {"gpus": 99}},
                           "UNSCHEDULABLE")):
            r = api.post("/v1/endpoints", json=bad)
            assert r.status_code == 422, (bad, r.text)
            assert code == "UNSCHEDULABLE" or "detail" in r.json()
            if code == "UNSCHEDULABLE":
                assert r.json()["error"]["code"] == code

    with server.client(outsider) as other:  # another org: not there
        assert other.get("/v1/endpoints/ep_resize-2").status_code == 404
        assert "ep_resize-2" not in [e["id"] for e in other.get("/v1/endpoints").json()["items"]]
        assert other.delete("/v1/endpoints/ep_resize-2").status_code == 404
        r = other.post("/v2/endpoints/ep_resize-2/run", json={"input": {}})
        assert r.status_code == 403 and r.json()["error"] == "ACCESS_DENIED"

    with server.client() as api:
        assert api.delete("/v1/endpoints/ep_resize-2").json() == {"id": "ep_resize-2",
                                                                  "deleted": True}
        assert api.get("/v1/endpoints/ep_resize-2").status_code == 404
        r = api.post("/v2/endpoints/ep_resize-2/run", json={"input": {}})
        assert r.status_code == 404
        assert r.json() == {"error": "ENDPOINT_NOT_FOUND",
                            "message": "endpoint ep_resize-2 not found",
                            "details": {"endpointId": "ep_resize-2"}}


def test_endpoints_in_the_sdk_and_cli(server: ServerProcess, monkeypatch, tmp_path) -> None:
    with jobyard.Client(server.url, server.admin_key) as client:
        made = client.endpoints.create("sdk_ep", ["python3", str(WORKER)], gpus=1,
                                       env={"A": "1"}, time_limit_s=30)
        assert (made.id, made.resources["gpus"], made.env) == ("ep_sdk_ep", 1, {"A": "1"})
        assert client.endpoints.get("ep_sdk_ep").command == ["python3", str(WORKER)]
        assert "ep_sdk_ep" in [e.id for e in client.endpoints.list()]
        assert client.endpoints.delete("ep_sdk_ep") is True
        with pytest.raises(jobyard.errors.NotFound):
            client.endpoints.get("ep_sdk_ep")

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(settings.URL_ENV, server.url)
    monkeypatch.setenv(settings.KEY_ENV, server.admin_key)
    monkeypatch.setenv("COLUMNS", "250")  # the table on one line per endpoint
    cli = CliRunner()
    result = cli.invoke(app, ["endpoint", "create", "cli_ep", "--gpus", "1", "--env", "K=V",
                              "--time-limit", "90", "--", "python3", str(WORKER)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ep_cli_ep"
    result = cli.invoke(app, ["endpoint", "ls"])
    assert result.exit_code == 0 and "ep_cli_ep" in result.stdout and "1m30s" in result.stdout
    result = cli.invoke(app, ["endpoint", "show", "ep_cli_ep", "--json"])
    shown = json.loads(result.stdout)
    assert shown["env"] == {"K": "V"} and shown["resources"]["gpus"] == 1
    with server.client() as api:  # what the CLI made runs
        job_id = run(api, "ep_cli_ep", {"output": {}})
        assert wait_status(api, job_id)["status"] == "completed"
    result = cli.invoke(app, ["endpoint", "rm", "ep_cli_ep"])
    assert result.exit_code == 0 and "ep_cli_ep deleted" in result.stdout
    result = cli.invoke(app, ["endpoint", "show", "ep_cli_ep"])
    assert result.exit_code == 1 and "not found" in result.stderr


# runs --------------------------------------------------------------------------------------------
def test_the_input_reaches_the_job_as_file_and_env(server: ServerProcess, ep: str) -> None:
    small = {"numbers": [1, 2, 3, 4], "text": "héllo", "nested": {"a": [None, True]},
             "output": {}}
    big = {"numbers": [10], "blob": "x" * 40_000, "output": {}}  # file only (env limit)
    with server.client() as api:
        jobs = [run(api, ep, small), run(api, ep, big)]
        done = [wait_status(api, j) for j in jobs]
        native = [api.get(f"/v1/jobs/{j}").json() for j in jobs]
    for spec, body, job in zip((small, big), done, native, strict=True):
        assert body["status"] == "completed", body
        assert body["output"]["result"]["inputSeen"] == spec
        assert body["output"]["result"]["sum"] == sum(spec["numbers"])
        assert "files" not in body["output"]  # only output.json: it is the result
        assert job["env"]["TENSORONE_ENDPOINT_ID"] == ep
        assert Path(job["env"]["TENSORONE_INPUT_FILE"]).name == "input.json"
        assert Path(job["workdir"]).name == "project"
    assert json.loads(native[0]["env"]["TENSORONE_INPUT"]) == small
    assert "TENSORONE_INPUT" not in native[1]["env"]


def test_priority_and_tags_map_both_ways(server: ServerProcess, ep: str) -> None:
    with server.client() as api:
        job_id = run(api, ep, {"output": {}}, priority="urgent",
                     tags={"team": "vision", "run": "7", "empty": ""})
        job = api.get(f"/v1/jobs/{job_id}").json()
        assert job["priority"] == 20
        assert sorted(job["tags"]) == ["empty:", "run:7", "team:vision"]
        body = status(api, job_id)
        assert body["priority"] == "urgent"
        assert body["tags"] == {"team": "vision", "run": "7", "empty": ""}
        for value, name in ((-50, "low"), (-10, "low"), (-1, "low"), (0, "normal"), (9, "normal"),
                            (10, "high"), (19, "high"), (500, "urgent")):
            native = submit(api, "true", priority=value, tags=["nightly", "k:v:w"])
            shown = status(api, native["id"])
            assert shown["priority"] == name, value
            assert shown["tags"] == {"nightly": "", "k": "v:w"}
            assert "endpointId" not in shown  # not run of an endpoint


def test_webhook_is_called_when_the_job_ends(server: ServerProcess, ep: str,
                                             receiver: Receiver) -> None:
    with server.client() as api:
        job_id = run(api, ep, {"output": {"ok": True}}, webhook=f"{receiver.url}/t1")
        other = run(api, ep, {"exit": 2},
                    webhook={"url": f"{receiver.url}/t1b", "events": ["failed"]})
        wait_status(api, job_id)
        wait_status(api, other)
    message = wait_until(lambda: next((m for m in receiver.messages if m.path == "/t1"), None))
    body = message.json
    assert body["type"] == "job.completed" and body["data"]["job"]["id"] == job_id
    assert "webhook-signature" in message.headers
    failed = wait_until(lambda: next((m for m in receiver.messages if m.path == "/t1b"), None))
    assert failed.json["type"] == "job.failed" and failed.json["data"]["job"]["id"] == other


def test_runsync_waits_for_the_end_within_its_bound(server: ServerProcess, ep: str,
                                                    release) -> None:
    with server.client() as api:
        r = api.post(f"/v2/endpoints/{ep}/runsync",
                     json={"input": {"numbers": [20, 22], "output": {}}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "completed" and body["output"]["result"]["sum"] == 42
        assert r.headers["location"] == f"/v2/jobs/{body['jobId']}/status"

        gate = release()  # a job that outlives the bound (2 s on this server)
        r = api.post(f"/v2/endpoints/{ep}/runsync",
                     json={"input": {"release": gate, "reports": [{"progress": 5}]}})
        assert r.status_code == 200, r.text
        late = r.json()
        # The job as it was at the bound: running at 5 % on an idle machine; a loaded one may
        # not have started it (or had its report) within the 2 s. Never ended, no output.
        assert late["status"] in ("queued", "initializing", "running"), late
        assert late.get("progress", 0) in (0, 5) and "output" not in late, late
        running = wait_status(api, late["jobId"], lambda s: s.get("progress") == 5)
        assert running["status"] == "running"
        Path(gate).touch()
        assert wait_status(api, late["jobId"])["status"] == "completed"


def test_bad_runs_are_refused_in_the_envelope(server: ServerProcess, ep: str) -> None:
    with server.client() as api:
        for body, where in (({"input": {}, "priority": "extreme"}, "priority"),
                            ({"input": {}, "tags": {"a": 1}}, "tags.a"),
                            ({"input": {}, "surprise": 1}, "surprise"),
                            ({"input": {}, "timeout": -1}, "timeout"),
                            ({"input": {}, "webhook": "ftp://example.com"}, "webhook.url"),
                            ({"input": {}, "tags": {"a:b": "c"}}, "tags.a:b")):
            r = api.post(f"/v2/endpoints/{ep}/run", json=body)
            assert r.status_code == 400, (body, r.text)
            answer = r.json()
            assert answer["error"] == "INVALID_REQUEST" and where in answer["message"], answer
            assert answer["details"]["errors"]
        r = api.post("/v2/endpoints/ep_missing/run", json={"input": {}})
        assert r.status_code == 404 and r.json()["error"] == "ENDPOINT_NOT_FOUND"


# status of jobs in every state -------------------------------------------------------------------
def test_timeout_cancelled_and_queued_jobs(server: ServerProcess, ep: str, release) -> None:
    with server.client() as api:
        timed = run(api, ep, {"release": release()}, timeout=0.5)
        body = wait_status(api, timed)
        assert body["status"] == "timeout"
        assert body["error"]["code"] == "TIMEOUT"
        assert body["error"]["details"] == {"timeLimitSeconds": 0.5}
        assert when(body["failedAt"]) > when(body["startedAt"])
        assert body["executionTime"] >= 0.5
        assert (body["retryable"], body["retryCount"]) == (False, 0)

        held = run(api, ep, {"release": release(), "reports": [{"progress": 12}]})
        wait_status(api, held, lambda s: s.get("progress") == 12)
        assert api.post(f"/v1/jobs/{held}/cancel").status_code == 202
        body = wait_status(api, held)
        assert body["status"] == "cancelled" and "cancelledAt" in body
        assert body["progress"] == 12 and "output" not in body

        big = create_endpoint(api, "all_gpus", resources={"gpus": 4})["id"]
        first = run(api, big, {"release": release()})
        wait_status(api, first, "running")
        second = run(api, big, {"output": {}})
        waiting = status(api, second)
        assert waiting["status"] == "queued" and waiting["progress"] == 0
        assert not {"startedAt", "estimatedCompletion", "executionTime"} & set(waiting)
        assert status(api, second, include="resources")["resources"] == {
            "gpuCount": 4, "cpu": {"cores": 1}}
        for job_id in (first, second):
            api.post(f"/v1/jobs/{job_id}/cancel")
        assert {wait_status(api, j)["status"] for j in (first, second)} == {"cancelled"}
        assert "startedAt" not in status(api, second)


def test_include_forms_and_summary(server: ServerProcess, ep: str, release) -> None:
    gate = release()
    with server.client() as api:
        job_id = run(api, ep, {"print": ["hello"], "reports": [
            {"progress": 40, "step": "crunching", "throughput": [12.5, "items/s"]}],
            "release": gate})
        wait_status(api, job_id, lambda s: s.get("progress") == 40)
        # It printed before it reported, but its output reaches the log through its
        # supervisor's pipe, which can lag the report on a loaded machine.
        comma = wait_status(api, job_id, lambda s: s["logs"], include="logs,metrics")
        repeated = api.get(f"/v2/jobs/{job_id}/status",
                           params=[("include", "logs"), ("include", "metrics")]).json()
        assert set(comma) == set(repeated) >= {"logs", "execution"}
        assert "resources" not in comma
        assert comma["throughput"] == {"value": 12.5, "unit": "items/s"}
        assert [x["message"] for x in comma["logs"]] == ["hello"]

        short = status(api, job_id, format="summary")
        assert set(short) == {"jobId", "status", "progress", "summary"}
        assert (short["status"], short["progress"]) == ("running", 40)
        assert short["summary"].startswith(f"Job {job_id} is running (40%); step crunching; "
                                           "estimated completion ")
        for params in ({"include": "everything"}, {"format": "xml"}):
            r = api.get(f"/v2/jobs/{job_id}/status", params=params)
            assert r.status_code == 400 and r.json()["error"] == "INVALID_REQUEST", r.text
        Path(gate).touch()
        done = status(api, wait_status(api, job_id)["jobId"], format="summary")
        assert done["summary"].startswith(f"Job {job_id} is completed (100%); step crunching; "
                                          "ran ")
        assert " USD" in done["summary"]


def test_native_jobs_show_through_tensorone_and_batch_limits(server: ServerProcess) -> None:
    with server.client() as api:
        job = submit(api, ["sh", "-c", "exit 5"])
        wait_state(api, job["id"])
        body = status(api, job["id"])
        assert body["status"] == "failed" and body["error"]["details"] == {"exitCode": 5}
        assert body["progress"] == 0  # it ran but never said how far it got
        r = api.post("/v2/jobs/status/batch", json={"jobIds": [f"job_{i}" for i in range(101)]})
        assert r.status_code == 400 and r.json()["error"] == "INVALID_REQUEST"
        r = api.post("/v2/jobs/status/batch", json={"jobIds": [job["id"]], "include": "logs"})
        assert r.json()["jobs"][0]["logs"] == []


def test_another_orgs_job_is_403_in_a_batch_too(server: ServerProcess, outsider: str) -> None:
    with server.client() as api:
        job = submit(api, "true")
        wait_state(api, job["id"])
    with httpx.Client(base_url=server.url, headers={"Authorization": outsider}) as other:
        r = other.post("/v2/jobs/status/batch", json={"jobIds": [job["id"]]})
    assert r.status_code == 200
    assert r.json() == {"jobs": [], "errors": [{
        "jobId": job["id"], "error": "ACCESS_DENIED",
        "message": "You don't have permission to view this job",
        "details": {"jobId": job["id"], "requiredPermission": "jobs:read",
                    "userPermissions": []}}]}
