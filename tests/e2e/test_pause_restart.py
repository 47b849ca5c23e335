"""A paused job across a server crash: adopted still paused, its processes still stopped, and
resumable by the next server."""

import time

from jobyard.testing import is_paused, wait_until
from tests.api.helpers import get, log_text, submit, wait_state
from tests.api.test_pause import COUNTER, QUIET_S, all_stopped, processes


def test_a_paused_job_stays_paused_across_a_restart_and_resumes(srv):
    api = srv.client()
    job = submit(api, ["python3", "-c", COUNTER, "100000"], time_limit_s=2)
    wait_until(lambda: len(log_text(api, job["id"])) >= 3, timeout=20)
    assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    stopped = {p.pid for p in wait_until(lambda: all_stopped(job["id"]), timeout=10)}
    lines = len(log_text(api, job["id"]))

    srv.kill()
    assert {p.pid for p in processes(job["id"])} == stopped  # nothing woke them
    srv.start()
    api = srv.client()
    # Adopted (the server answers for it) and still paused, with the same processes stopped:
    # longer than its time limit by now, and it did not time out.
    wait_until(lambda: "adopting" in srv.log(), timeout=20)
    time.sleep(QUIET_S)  # a window in which nothing may move
    assert get(api, job["id"])["state"] == "paused"
    assert {p.pid for p in processes(job["id"])} == stopped
    assert all(is_paused(pid) for pid in stopped)
    assert len(log_text(api, job["id"])) == lines

    r = api.post(f"/v1/jobs/{job['id']}/resume")
    assert r.status_code == 202 and r.json()["state"] == "running"
    wait_until(lambda: len(log_text(api, job["id"])) > lines, timeout=10)
    done = wait_state(api, job["id"], timeout=20)  # its time limit runs again: what was left
    assert done["state"] == "timeout", done
    assert not processes(job["id"])
