"""Jobs talk back: POST /v1/jobs/{id}/report with the job's token, `jobyard report` from a shell
job, and tqdm bars read off a job's stderr — all through a real server and real jobs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import tqdm

from jobyard.testing import wait_until
from tests.api.helpers import get, log_text, scratch, submit, wait_state

JOBYARD = "jobyard"  # on every job's PATH (the server's own, or the client given to jobs)
TOKEN_THEN_WAIT = 'echo "$JOBYARD_JOB_TOKEN"; exec sleep 60'


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def token_of(api: httpx.Client, job: dict[str, Any]) -> str:
    """The job token a running job printed first thing."""
    return wait_until(lambda: next(iter(log_text(api, job["id"])), None), timeout=20)


def post(server, ref: Any, token: str | None, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{server.url}/v1/jobs/{ref}/report", json=body, headers=headers,
                      timeout=10)


def test_a_shell_job_reports_with_jobyard_report(api):
    job = submit(api, f"{JOBYARD} report --progress 75 --step processing_images "
                      f"--meta imagesProcessed=750 --meta camera=left --items 750/1000")
    done = wait_state(api, job["id"])
    assert done["state"] == "completed", log_text(api, job["id"])
    assert (done["progress"], done["current_step"]) == (75.0, "processing_images")
    assert done["metadata"] == {"imagesProcessed": 750, "camera": "left"}
    assert done["items"] == {"done": 750, "total": 1000}
    assert epoch(done["estimated_completion"]) > epoch(done["started_at"])
    assert log_text(api, job["id"]) == []  # quiet when it worked


def test_jobyard_report_never_fails_its_job(api, server):
    away = "http://127.0.0.1:9"  # nothing listens there: the server is "away"
    job = submit(api, f"{JOBYARD} --url {away} report --progress 5 && "
                      f"{JOBYARD} report --progress 10 && echo still here")
    done = wait_state(api, job["id"])
    assert done["state"] == "completed"
    lines = log_text(api, job["id"])
    assert "still here" in lines and any("not reported" in line for line in lines)
    assert done["progress"] == 10.0
    usage = submit(api, f"{JOBYARD} report --progress 500")
    assert wait_state(api, usage["id"])["exit_code"] == 2


def test_a_job_printing_a_real_tqdm_bar(api):
    script = ("import time\nfrom tqdm import tqdm\n"
              "for _ in tqdm(range(120), desc='epoch 1', unit='img'):\n"
              "    time.sleep(0.02)\n")
    # Under the machine's python3 (the job's uid may not reach the server's), with tqdm from
    # the test environment's packages.
    job = submit(api, ["python3", "-c", script],
                 env={"PYTHONPATH": str(Path(tqdm.__file__).parent.parent)})
    seen = wait_until(lambda: (j := get(api, job["id"]))["progress"] is not None and j,
                      timeout=20)
    assert seen["substate"] in ("processing", None)  # None: it already ended
    assert seen["current_step"] == "epoch 1"
    done = wait_state(api, job["id"])
    assert done["state"] == "completed"
    assert (done["progress"], done["items"]) == (100.0, {"done": 120, "total": 120})
    assert done["throughput"]["unit"] == "img/s" and 10 < done["throughput"]["value"] < 60
    assert abs(epoch(done["estimated_completion"]) - epoch(done["finished_at"])) < 2
    assert log_text(api, job["id"])[-1].startswith("epoch 1: 100%|")  # one line, not 120


def test_reports_are_ordered_by_seq_and_batches_apply_in_order(api, server):
    job = submit(api, TOKEN_THEN_WAIT)
    token = token_of(api, job)
    r = post(server, job["id"], token, {"seq": 10, "progress": 50, "step": "b"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["last_seq"] == 10
    r = post(server, job["id"], token, {"seq": 5, "progress": 20, "step": "a"})
    assert r.json()["accepted"] == 0 and r.json()["ignored"] == 1
    assert (get(api, job["id"])["progress"], get(api, job["id"])["current_step"]) == (50.0, "b")
    r = post(server, job["number"], token, {"reports": [
        {"seq": 11, "progress": 60, "metadata": {"k": 1}},
        {"seq": 9, "progress": 10},
        {"seq": 12, "step": "c", "metadata": {"j": 2}, "throughput": {"value": 3, "unit": "x/s"}},
    ]})
    assert (r.json()["accepted"], r.json()["ignored"], r.json()["substate"]) == (
        2, 1, "processing")
    now = get(api, job["id"])
    assert (now["progress"], now["current_step"], now["metadata"]) == (60.0, "c", {"k": 1, "j": 2})
    assert now["throughput"] == {"value": 3.0, "unit": "x/s"}
    api.post(f"/v1/jobs/{job['id']}/cancel")
    wait_state(api, job["id"])


def test_tokens_are_for_one_job_and_only_while_it_runs(api, server):
    job = submit(api, TOKEN_THEN_WAIT)
    other = submit(api, "exec sleep 60")
    token = token_of(api, job)
    assert post(server, other["id"], token, {"progress": 1}).status_code == 403
    assert post(server, other["number"], token, {"progress": 1}).status_code == 403
    # Its MAC's last hex digit changed (replacing two with "00" was the same token 1 in 256).
    bad = post(server, job["id"], token[:-1] + ("1" if token[-1] == "0" else "0"),
               {"progress": 1})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "UNAUTHORIZED"
    assert post(server, job["id"], None, {"progress": 1}).status_code == 401
    assert post(server, job["id"], server.admin_key, {"progress": 1}).status_code == 401
    assert post(server, job["id"], token, {"progress": 1}).status_code == 200
    for ref in (job["id"], other["id"]):
        api.post(f"/v1/jobs/{ref}/cancel")
    ended = wait_state(api, job["id"])
    late = post(server, job["id"], token, {"progress": 99, "step": "late"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "CONFLICT"
    assert "reports are closed" in late.json()["error"]["message"]
    after = get(api, job["id"])
    assert (after["state"], after["progress"], after["current_step"]) == (
        ended["state"], 1.0, None)
    wait_state(api, other["id"])


def test_a_token_of_an_earlier_attempt_is_expired(api, server, tmp_path):
    drop = scratch(tmp_path)
    script = (f'echo "$JOBYARD_JOB_TOKEN" > {drop}/token.$JOBYARD_ATTEMPT; '
              'if [ "$JOBYARD_ATTEMPT" = 1 ]; then exit 3; fi; exec sleep 60')
    job = submit(api, script, retry={"max_retries": 1, "backoff_s": 0})
    wait_until(lambda: (drop / "token.2").exists(), timeout=20)
    first, second = ((drop / f"token.{n}").read_text().strip() for n in (1, 2))
    expired = post(server, job["id"], first, {"progress": 1})
    assert expired.status_code == 401 and "attempt" in expired.json()["error"]["message"]
    assert post(server, job["id"], second, {"progress": 1}).status_code == 200
    api.post(f"/v1/jobs/{job['id']}/cancel")
    wait_state(api, job["id"])


def test_bad_reports_answer_422_in_the_validation_shape(api, server):
    job = submit(api, TOKEN_THEN_WAIT)
    token = token_of(api, job)
    for body in ({"progress": 150}, {"progress": 5, "reports": [{}]}, {"reports": []},
                 {"substate": "stopping"}, {"throughput": -1}, {"metrics": {"x": "high"}},
                 {"outputs": [{"path": "/x"}]}, {"seq": -1}, [1, 2]):
        r = post(server, job["id"], token, body)
        assert r.status_code == 422, (body, r.text)
        assert isinstance(r.json()["detail"], list)
    api.post(f"/v1/jobs/{job['id']}/cancel")
    wait_state(api, job["id"])


def test_a_report_after_the_job_ended_never_changes_it(api, server):
    job = submit(api, 'echo "$JOBYARD_JOB_TOKEN"')
    done = wait_state(api, job["id"])
    token = log_text(api, job["id"])[0]
    r = post(server, job["id"], token, {"progress": 10, "substate": "finalizing"})
    assert r.status_code == 409
    assert get(api, job["id"]) == done  # not a field changed
