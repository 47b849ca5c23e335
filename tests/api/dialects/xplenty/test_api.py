"""The Integrate.io API on the wire (httpx against a real server): the Accept and Basic auth
rules, accounts, collections, errors, and the seed's ``Job`` on every job answer — jobs made
here and through the native API alike."""

from __future__ import annotations

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.xplenty.conftest import (
    ACCEPT,
    ACCOUNT,
    available_cluster,
    basic,
    make_package,
    terminate,
    wait_job,
    xclient,
)
from tests.api.dialects.xplenty.seed import check_error, check_job, seed_statuses
from tests.api.helpers import submit, wait_state

JOBYARD = "jobyard"  # on every job's PATH (the server's own, or the client given to jobs)


def test_the_seed_page_was_found() -> None:
    assert seed_statuses() == {"idle", "pending", "queued", "running", "completed", "failed",
                               "pending_stoppage", "stopping", "stopped"}


@pytest.mark.parametrize("accept", [
    ACCEPT, "application/vnd.xplenty+json version=2", "application/vnd.xplenty+json",
    "text/html, application/vnd.xplenty+json; version=2"])
def test_the_version_header_is_accepted_as_written(server: ServerProcess, accept: str) -> None:
    r = httpx.get(f"{server.url}/{ACCOUNT}/api/rate_limit_status", timeout=10,
                  headers={"Accept": accept, "Authorization": basic(server.admin_key)})
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["limit"] == 5000
    assert r.headers["content-type"] == ACCEPT


@pytest.mark.parametrize("accept", [None, "application/json", "*/*",
                                    "application/vnd.xplenty+json; version=1"])
def test_without_the_version_header_it_is_404(server: ServerProcess, accept: str | None) -> None:
    headers = {"Authorization": basic(server.admin_key)}
    if accept:
        headers["Accept"] = accept
    r = httpx.get(f"{server.url}/{ACCOUNT}/api/jobs", headers=headers, timeout=10)
    assert r.status_code == 404
    assert "Accept: application/vnd.xplenty+json; version=2" in check_error(r.json())


def test_basic_auth_takes_the_key_as_username_with_or_without_colon(
        server: ServerProcess) -> None:
    url = f"{server.url}/{ACCOUNT}/api/jobs"
    for auth in (basic(server.admin_key), basic(server.admin_key, colon=False),
                 basic(server.admin_key + ":ignored-password")):
        r = httpx.get(url, headers={"Accept": ACCEPT, "Authorization": auth}, timeout=10)
        assert r.status_code == 200 and isinstance(r.json(), list), r.text
    for auth, words in ((None, "Basic username"), (f"Bearer {server.admin_key}", "Basic"),
                        ("Basic !!!", "Basic"), (basic("jy_wrong"), "unknown or revoked")):
        headers = {"Accept": ACCEPT} | ({"Authorization": auth} if auth else {})
        r = httpx.get(url, headers=headers, timeout=10)
        assert r.status_code == 401 and words in check_error(r.json())


def test_the_account_is_the_callers_org_by_name_or_id(server: ServerProcess,
                                                      api: httpx.Client) -> None:
    org_id = api.get("/v1/me").json()["org_id"]
    for account in (ACCOUNT, str(org_id)):
        with xclient(server, account=account) as x:
            assert x.get("/jobs").status_code == 200
    assert api.post("/v1/orgs", json={"name": "xp-other"}).status_code == 201
    assert api.post("/v1/users", json={"username": "xp-bob", "org": "xp-other"}
                    ).status_code == 201
    key = api.post("/v1/keys", json={"username": "xp-bob", "name": "k"}).json()["key"]
    with xclient(server, account="xp-other") as x:  # the admin is not in that org
        r = x.get("/jobs")
        assert r.status_code == 404 and check_error(r.json()) == "account xp-other not found"
    with xclient(server, key=key, account=ACCOUNT) as x:
        assert x.get("/jobs").status_code == 404
    with xclient(server, key=key, account="xp-other") as x:
        assert x.get("/jobs").json() == []  # the admin's jobs are another account's
        mine = submit(api, "true")
        r = x.get(f"/jobs/{mine['number']}")
        assert r.status_code == 404 and check_error(r.json()) == (
            f"job {mine['number']} not found")


def test_native_jobs_show_every_status_in_the_seed_shape(api: httpx.Client,
                                                          xapi: httpx.Client) -> None:
    blocker = submit(api, "sleep 60", resources={"gpus": 4})
    wait_state(api, blocker["id"], "running")
    queued = submit(api, "true", resources={"gpus": 4})
    body = check_job(xapi.get(f"/jobs/{queued['number']}").json())
    assert (body["status"], body["progress"], body["completed_at"]) == ("queued", 0.0, None)
    assert body["variables"] == {} and body["dynamic_variables"] == {}
    assert "package_id" not in body and "cluster_id" not in body and "package" not in body
    assert body["log_url"] is None and body["html_url"].endswith(f"/v1/jobs/{queued['id']}")
    stopped = check_job(xapi.delete(f"/jobs/{queued['number']}").json())
    assert stopped["status"] == "stopped" and stopped["completed_at"] is not None

    running = check_job(xapi.get(f"/jobs/{blocker['number']}").json())
    assert running["status"] == "running" and running["log_url"].endswith("/logs")
    stop = xapi.delete(f"/jobs/{blocker['number']}")
    assert stop.status_code == 200 and check_job(stop.json())["status"] == "pending_stoppage"
    assert check_job(wait_job(xapi, blocker["number"], "stopped"))["failed_at"] is None

    failed = submit(api, "exit 3")
    wait_state(api, failed["id"])
    body = check_job(xapi.get(f"/jobs/{failed['number']}").json())
    assert body["status"] == "failed" and body["errors"] == "exited with code 3"
    assert body["failed_at"] == body["completed_at"] is not None
    r = xapi.delete(f"/jobs/{failed['number']}")
    assert r.status_code == 409 and "already ended (failed)" in check_error(r.json())


def test_progress_is_the_reported_fraction(api: httpx.Client, xapi: httpx.Client) -> None:
    cluster = available_cluster(xapi)
    package = make_package(api, "reports-40", f"{JOBYARD} report --progress 40 && sleep 60")
    r = xapi.post("/jobs", json={"cluster_id": cluster["id"], "package_id": package["id"]})
    assert r.status_code == 201, r.text
    job = check_job(r.json())
    assert job["status"] in ("queued", "pending", "running")
    assert job["cluster"] == {"id": cluster["id"], "name": cluster["name"],
                              "url": cluster["url"]}
    assert job["package"] == {"id": package["id"], "name": "reports-40",
                              "url": f"{xapi.base_url}packages/{package['id']}"}

    def at_40() -> dict | None:
        body = check_job(xapi.get(f"/jobs/{job['id']}").json())
        return body if body["progress"] == 0.4 else None

    assert wait_until(at_40, timeout=20)["status"] == "running"
    assert xapi.get(f"/clusters/{cluster['id']}").json()["running_jobs_count"] == 1
    check_job(xapi.delete(f"/jobs/{job['id']}").json())
    final = check_job(wait_job(xapi, job["id"], "stopped"))
    assert final["progress"] == 0.4 and final["runtime_in_seconds"] >= 0
    assert xapi.delete(f"/clusters/{cluster['id']}").json()["status"] == "pending_terminate"
    terminate(xapi, cluster["id"])  # a repeat answers the cluster as it is


def test_collections_are_bare_arrays_with_offset_limit_and_links(
        api: httpx.Client, xapi: httpx.Client) -> None:
    ids = [submit(api, "true")["number"] for _ in range(3)]
    page = xapi.get("/jobs", params={"offset": 0, "limit": 2})
    assert page.status_code == 200 and isinstance(page.json(), list)
    assert [j["id"] for j in page.json()] == sorted(ids, reverse=True)[:2]  # newest first
    for body in page.json():
        check_job(body)
    links = page.headers["link"]
    assert 'rel="next"' in links and "offset=2" in links and 'rel="prev"' not in links
    total = int(page.headers["x-total-count"])
    second = xapi.get("/jobs", params={"offset": 2, "limit": 2})
    assert 'rel="prev"' in second.headers["link"]
    assert second.json()[0]["id"] == sorted(ids, reverse=True)[2]
    assert len(xapi.get("/jobs").json()) == min(20, total)  # the SDK sends no parameters
    done = xapi.get("/jobs", params={"status": "completed", "limit": 100}).json()
    assert done and {j["status"] for j in done} == {"completed"}
    r = xapi.get("/jobs", params={"limit": 1000})
    assert r.status_code == 422 and "limit" in check_error(r.json())
    r = xapi.get("/jobs", params={"status": "bogus"})
    assert r.status_code == 422 and "bogus" in check_error(r.json())


def test_errors_are_json_messages(xapi: httpx.Client, api: httpx.Client) -> None:
    for method, path, status, words in (
            ("GET", "/jobs/424242", 404, "job 424242 not found"),
            ("GET", "/clusters/424242", 404, "cluster 424242 not found"),
            ("GET", "/packages/424242", 404, "package 424242 not found"),
            ("GET", "/schedules/424242", 404, "schedule 424242 not found"),
            ("GET", "/nothing/here", 404, "not offered"),
            ("PUT", "/clusters/1", 404, "not offered"),
            ("GET", "/jobs/not-a-number", 422, "invalid request: job_id"),
            ("POST", "/jobs", 422, "cluster_id: is required")):
        r = xapi.request(method, path)
        assert r.status_code == status and words in check_error(r.json()), (path, r.text)
    package = make_package(api, "err-pkg", "true")
    r = xapi.post("/jobs", json={"cluster_id": 424242, "package_id": package["id"]})
    assert r.status_code == 404 and check_error(r.json()) == "cluster 424242 not found"
    r = xapi.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in check_error(r.json())
    r = xapi.post("/clusters", json={"type": "huge"})
    assert r.status_code == 422 and "'huge'" in check_error(r.json())
    r = xapi.post("/clusters", json={"type": "sandbox", "nodes": 0})
    assert r.status_code == 422 and "nodes: must be from 1" in check_error(r.json())


def test_the_vendor_docs_form_encoding_is_accepted(api: httpx.Client,
                                                  xapi: httpx.Client) -> None:
    cluster = available_cluster(xapi, name="form-cluster", description="for forms",
                                terminate_on_idle=1, time_to_idle=900)
    assert (cluster["description"], cluster["terminate_on_idle"], cluster["time_to_idle"],
            cluster["type"], cluster["instance_type"]) == ("for forms", True, 900,
                                                           "production", "cpu-1")
    package = make_package(api, "form-pkg", 'test "$X" = yes')
    r = xapi.post("/jobs", data={"job[cluster_id]": str(cluster["id"]),
                                 "job[package_id]": str(package["id"]),
                                 "job[variables][X]": "'yes'"})
    assert r.status_code == 201, r.text
    job = check_job(r.json())
    assert job["variables"] == {"X": "'yes'"}
    assert check_job(wait_job(xapi, job["id"], {"completed", "failed"}))["status"] == (
        "completed")
    r = xapi.post("/jobs", json={"cluster_id": cluster["id"], "package_id": package["id"],
                                 "variables": {"1bad": "x"}})
    assert r.status_code == 422 and "'1bad'" in check_error(r.json())
    terminate(xapi, cluster["id"])
    r = xapi.post("/jobs", json={"cluster_id": cluster["id"], "package_id": package["id"]})
    assert r.status_code == 409 and f"cluster {cluster['id']} is not available" in (
        check_error(r.json()))
