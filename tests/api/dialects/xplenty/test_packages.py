"""Packages and schedules through Jobyard's own API, SDK and CLI, and a schedule's runs made
by the leading daemon, seen through the Integrate.io API."""

from __future__ import annotations

import re

import httpx
import pytest
from typer.testing import CliRunner

import jobyard
from jobyard.cli.main import app
from jobyard.errors import Conflict, NotFound, ValidationFailed
from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.xplenty.conftest import make_package, wait_job
from tests.api.dialects.xplenty.seed import check_job
from tests.cli.test_cli import cli  # noqa: F401  (the fixture)


def test_packages_through_the_native_api(api: httpx.Client) -> None:
    p = make_package(api, "native pkg", ["sh", "-c", "echo $A"], variables={"A": 1, "B": True},
                     resources={"cpus": 0.5}, description="two variables")
    assert p["variables"] == {"A": "1", "B": "true"} and p["resources"]["cpus"] == 0.5
    assert api.get(f"/v1/packages/{p['id']}").json() == p
    assert api.get("/v1/packages/native pkg").json()["id"] == p["id"]
    listed = api.get("/v1/packages", params={"limit": 1}).json()
    assert listed["items"][0]["id"] == p["id"] and listed["total"] >= 1
    r = api.post("/v1/packages", json={"name": "native pkg", "command": "true"})
    assert r.status_code == 409 and "already exists" in r.json()["error"]["message"]
    for body, words in (({"name": "bad", "command": ""}, "command"),
                        ({"name": "bad", "command": "x", "variables": {"A-B": "1"}}, "'A-B'"),
                        ({"name": "bad", "command": "x", "variables": {"JOBYARD_X": "1"}},
                         "'JOBYARD_X'"),
                        ({"name": "123", "command": "x"}, "digits"),
                        ({"name": "big", "command": "x", "resources": {"gpus": 99}},
                         "capacity")):
        r = api.post("/v1/packages", json=body)
        assert r.status_code == 422 and words in r.text, r.text

    r = api.post("/v1/schedules", json={"name": "s", "package": p["id"], "interval_amount": 2,
                                        "interval_unit": "fortnights"})
    assert r.status_code == 422 and "interval_unit" in r.text
    r = api.post("/v1/schedules", json={"name": "hourly", "package": "native pkg",
                                        "interval_amount": 2, "interval_unit": "hours",
                                        "start_at": "2099-05-31T10:00:00Z", "enabled": False})
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["status"], s["next_run_at"], s["package"]) == (
        "disabled", "2099-05-31T10:00:00Z", {"id": p["id"], "name": "native pkg"})
    r = api.delete(f"/v1/packages/{p['id']}")
    assert r.status_code == 409 and str(s["id"]) in r.json()["error"]["message"]
    assert api.post(f"/v1/schedules/{s['id']}/enable").json()["status"] == "enabled"
    assert api.delete(f"/v1/schedules/{s['id']}").json() == {"id": s["id"], "deleted": True}
    assert api.get(f"/v1/schedules/{s['id']}").status_code == 404
    assert api.delete(f"/v1/packages/{p['id']}").json() == {"id": p["id"], "deleted": True}
    assert api.get(f"/v1/packages/{p['id']}").status_code == 404


def test_a_schedule_runs_its_package(api: httpx.Client, xapi: httpx.Client) -> None:
    p = make_package(api, "scheduled", 'echo "$WHO $WHEN" > "$JOBYARD_OUTPUT_DIR/who.txt"',
                     variables={"WHO": "package", "WHEN": "'always'"})
    r = api.post("/v1/schedules", json={"name": "every minute", "package": p["id"],
                                        "interval_amount": 1, "interval_unit": "minutes",
                                        "variables": {"WHO": "'the schedule'"}})
    assert r.status_code == 201, r.text
    s = r.json()

    def ran() -> dict | None:
        now = api.get(f"/v1/schedules/{s['id']}").json()
        return now if now["execution_count"] else None

    after = wait_until(ran, timeout=15, interval=0.05)
    assert after["execution_count"] == 1 and after["last_run_at"] is not None
    assert after["next_run_at"] > after["last_run_at"]  # a minute on, not made up
    number = after["last_job_number"]
    job = check_job(wait_job(xapi, number, {"completed", "failed"}))
    assert job["status"] == "completed" and job["package_id"] == p["id"]
    assert job["variables"] == {"WHO": "'the schedule'"} and "cluster_id" not in job
    native = api.get(f"/v1/jobs/{number}").json()
    assert api.get(f"/v1/jobs/{native['id']}/outputs/who.txt").text == "the schedule always\n"
    done = wait_until(lambda: (x := api.get(f"/v1/schedules/{s['id']}").json())[
        "last_run_state"] == "completed" and x, timeout=10)
    seen = xapi.get(f"/schedules/{s['id']}").json()
    assert seen["last_run_status"] == "completed" and seen["execution_count"] == 1
    assert api.post(f"/v1/schedules/{s['id']}/disable").json()["status"] == "disabled"
    assert done["execution_count"] == 1


def test_the_sdk(server: ServerProcess) -> None:
    with jobyard.Client(server.url, server.admin_key) as c:
        p = c.packages.create("sdk-pkg", "echo $X", variables={"X": "'x'"}, cpus=0.5)
        assert c.packages.get("sdk-pkg") == p and p.id in [x.id for x in c.packages.list()]
        s = c.schedules.create("sdk-s", p.id, every=1, unit="months",
                               start_at="2099-01-31T00:00:00Z", enabled=False)
        assert (s.status, s.interval_unit, s.next_run_at.isoformat()) == (
            "disabled", "months", "2099-01-31T00:00:00+00:00")
        assert c.schedules.get(s.id) == s and s.id in [x.id for x in c.schedules.list()]
        with pytest.raises(Conflict):
            c.packages.delete(p.id)
        with pytest.raises(ValidationFailed):
            c.schedules.create("sdk-bad", p.id, every=0, unit="days")
        c.schedules.delete(s.id)
        c.packages.delete("sdk-pkg")
        with pytest.raises(NotFound):
            c.packages.get(p.id)


def test_the_cli(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(app, ["package", "create", "cli-pkg", "--var", "GREETING='hi'",
                              "--var", "N=2", "--cpus", "0.5", "--", "echo $GREETING $N"])
    assert result.exit_code == 0, result.output
    pid = re.search(r"package (\d+) cli-pkg", result.stdout).group(1)
    result = cli.invoke(app, ["package", "ls"])
    assert result.exit_code == 0 and "cli-pkg" in result.stdout and "N=2" in result.stdout
    result = cli.invoke(app, ["package", "show", "cli-pkg", "--json"])
    assert result.exit_code == 0 and '"command": "echo $GREETING $N"' in result.stdout
    result = cli.invoke(app, ["schedule", "create", "cli-s", "--package", pid, "--every", "3",
                              "--unit", "days", "--start", "2099-02-01T08:00:00Z",
                              "--disabled"])
    assert result.exit_code == 0 and "next run 2099-02-01 08:00 UTC" in result.stdout
    sid = re.search(r"schedule (\d+)", result.stdout).group(1)
    result = cli.invoke(app, ["schedule", "ls"])
    assert result.exit_code == 0 and "3 days" in result.stdout and "disabled" in result.stdout
    result = cli.invoke(app, ["package", "rm", pid])
    assert result.exit_code == 1 and "delete them first" in result.stderr
    assert cli.invoke(app, ["schedule", "rm", sid]).exit_code == 0
    result = cli.invoke(app, ["package", "rm", "cli-pkg"])
    assert result.exit_code == 0 and f"package {pid} deleted" in result.stdout
    result = cli.invoke(app, ["schedule", "show", sid])
    assert result.exit_code == 1 and f"schedule {sid} not found" in result.stderr
