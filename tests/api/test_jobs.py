"""The native job API against a real server (one per module, on SQLite and PostgreSQL)."""

import os

from tests.api.helpers import get, log_text, submit, wait_state


def test_a_job_runs_to_completion_with_its_logs_and_env(api):
    r = api.post("/v1/jobs", json={
        "command": "echo out; echo err >&2; echo \"id=$JOBYARD_JOB_ID gpu=$CUDA_VISIBLE_DEVICES "
                   "seed=$SEED\"",
        "env": {"SEED": "42"}, "resources": {"gpus": 2}, "tags": ["t1"],
    })
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["id"].startswith("job_") and job["state"] in ("queued", "launching", "running")
    done = wait_state(api, job["id"])
    assert done["state"] == "completed" and done["exit_code"] == 0, done
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    gpus = ",".join(map(str, done["assigned"]["gpus"]))
    assert len(done["assigned"]["gpus"]) == 2
    lines = log_text(api, job["id"])
    # Two pipes: order is kept within a stream, not across them.
    assert sorted(lines) == sorted(["out", "err", f"id={job['id']} gpu={gpus} seed=42"])
    page = api.get(f"/v1/jobs/{job['id']}/logs").json()
    assert page["eof"] is True
    assert {line["stream"] for line in page["lines"]} == {"stdout", "stderr"}
    assert get(api, done["number"])["id"] == job["id"]  # the integer id resolves too


def test_exit_codes_and_launch_failures(api):
    bad = submit(api, "exit 3")
    missing = submit(api, ["/nonexistent/program", "x"])
    argv = submit(api, ["sh", "-c", "echo \"$0 $1\"", "a b", "c"])
    assert wait_state(api, bad["id"])["state"] == "error"
    err = get(api, bad["id"])
    assert err["exit_code"] == 3 and err["error"]["code"] == "NONZERO_EXIT"
    failed = wait_state(api, missing["id"])
    assert failed["state"] == "failed" and failed["error"]["code"] == "LAUNCH_FAILED"
    assert "/nonexistent/program" in failed["error"]["message"]
    assert wait_state(api, argv["id"])["state"] == "completed"
    assert log_text(api, argv["id"]) == ["a b c"]


def test_invalid_submissions_are_refused_clearly(api, server):
    r = api.post("/v1/jobs", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "command"]
    r = api.post("/v1/jobs", json={"command": "true", "bogus": 1})
    assert r.status_code == 422
    r = api.post("/v1/jobs", json={"command": "x" * 70000})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "command"]
    r = api.post("/v1/jobs", json={"command": "true", "env": {"JOBYARD_JOB_ID": "x"}})
    assert r.status_code == 422
    r = api.post("/v1/jobs", json={"command": "true", "env": {f"V{i}": "x" for i in range(300)}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "env"]
    r = api.post("/v1/jobs", content=b'{"command": "' + b"x" * 2_000_000 + b'"}',
                 headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQUEST_TOO_LARGE"
    r = api.post("/v1/jobs", json={"command": "true", "resources": {"gpus": 99}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "UNSCHEDULABLE"
    assert "99 gpus (capacity 4)" in r.json()["error"]["message"]
    r = api.post("/v1/jobs", json={"command": "true", "resources": {"gpus": -1}})
    assert r.status_code == 422
    assert api.get("/v1/jobs/job_doesnotexist").status_code == 404
    assert api.get("/v1/jobs/999999").json()["error"]["code"] == "JOB_NOT_FOUND"
    assert api.get("/v1/jobs", params={"state": "bogus"}).status_code == 422
    assert api.get("/v1/jobs", params={"cursor": "!!"}).status_code == 422


def test_idempotency_key_returns_the_original_job(api):
    body = {"command": "true", "name": "idem"}
    key = {"Idempotency-Key": "abc-" + os.urandom(4).hex()}
    first = api.post("/v1/jobs", json=body, headers=key)
    again = api.post("/v1/jobs", json=body, headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = api.post("/v1/jobs", json={**body, "command": "false"}, headers=key)
    assert other.status_code == 409


def test_list_filters_and_cursor_pagination(api):
    tag = "page-" + os.urandom(3).hex()
    made = [submit(api, "true", tags=[tag], name=f"n{i}")["id"] for i in range(5)]
    seen, url, params = [], "/v1/jobs", {"tag": tag, "limit": 2}
    while url:
        r = api.get(url, params=params)
        assert r.status_code == 200
        seen += [j["id"] for j in r.json()["items"]]
        link = r.headers.get("link")
        assert (link is not None) == (r.json()["next_cursor"] is not None)
        url, params = (link.split(";")[0].strip("<>"), None) if link else (None, None)
    assert seen == list(reversed(made))
    named = api.get("/v1/jobs", params={"name": "n3", "tag": tag}).json()["items"]
    assert [j["id"] for j in named] == [made[3]]
    for ref in made:
        wait_state(api, ref)
    done = api.get("/v1/jobs", params={"tag": tag, "state": "completed"}).json()["items"]
    assert len(done) == 5


def test_time_limit_and_retries(api):
    slow = submit(api, "sleep 30", time_limit_s=0.5)
    flaky = submit(api, "echo try-$JOBYARD_ATTEMPT; exit 5",
                   retry={"max_retries": 2, "backoff_s": 0.05, "on": ["error"]})
    timed = wait_state(api, slow["id"])
    assert timed["state"] == "timeout" and timed["error"]["code"] == "TIMEOUT"
    final = wait_state(api, flaky["id"])
    assert final["state"] == "error" and final["attempt"] == 3 and final["exit_code"] == 5
    for attempt in (1, 2, 3):
        lines = api.get(f"/v1/jobs/{flaky['id']}/logs", params={"attempt": attempt}).json()
        assert [x["text"] for x in lines["lines"]] == [f"try-{attempt}"]


def test_health_and_metrics(api, server):
    assert api.get("/healthz").json()["status"] == "ok"
    text = api.get("/metrics").text
    assert 'jobyard_jobs{state="completed"}' in text
    assert 'jobyard_capacity{resource="gpus"} 4.0' in text


def test_a_finished_job_can_be_deleted_with_its_files(api, server):
    running = submit(api, "sleep 30")
    wait_state(api, running["id"], "running")
    r = api.delete(f"/v1/jobs/{running['id']}")
    assert r.status_code == 409 and r.json()["error"]["details"]["state"] == "running"
    api.post(f"/v1/jobs/{running['id']}/cancel")

    done = submit(api, "echo kept-until-deleted")
    wait_state(api, done["id"])
    logs = server.data_dir / "runs" / f"{done['id']}.1"
    assert logs.is_dir()
    r = api.delete(f"/v1/jobs/{done['id']}")
    assert r.status_code == 200 and r.json() == {"id": done["id"], "deleted": True}
    assert api.get(f"/v1/jobs/{done['id']}").status_code == 404
    assert not logs.exists()
    assert api.delete(f"/v1/jobs/{done['id']}").status_code == 404
