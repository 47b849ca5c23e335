"""Cancel in every phase, with receipts, and no process left behind."""

import psutil

from jobyard.testing import marked_processes, wait_until
from tests.api.helpers import get, log_text, submit, wait_state


def test_cancel_a_queued_job_and_repeat_and_terminal(api):
    blocker = submit(api, "sleep 30", resources={"gpus": 4})
    wait_state(api, blocker["id"], "running")
    waiting = submit(api, "true", resources={"gpus": 2})
    info = get(api, waiting["id"])
    assert info["state"] == "queued"
    assert info["waiting"]["reason"] == "resources"
    assert info["waiting"]["waiting_for"]["gpus"] == {"requested": 2, "free": 0}
    assert info["waiting"]["position"] == 1
    r = api.post(f"/v1/jobs/{waiting['id']}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "canceled"
    again = api.post(f"/v1/jobs/{waiting['id']}/cancel")
    assert again.status_code == 200 and again.json()["state"] == "canceled"
    r = api.post(f"/v1/jobs/{blocker['id']}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "canceling"
    done = wait_state(api, blocker["id"])
    receipt = done["cancel_receipt"]
    assert done["state"] == "canceled" and receipt["sigterm_obeyed"] is True
    assert receipt["signals"] == ["SIGTERM"]
    finished = submit(api, "true")
    wait_state(api, finished["id"])
    r = api.post(f"/v1/jobs/{finished['id']}/cancel")
    assert r.status_code == 409 and "completed" in r.json()["error"]["message"]


STUBBORN = r"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
kids = [subprocess.Popen([sys.executable, "-c",
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])]
kids.append(subprocess.Popen(["sleep", "300"], start_new_session=True))  # escapes with setsid
if os.fork() == 0:  # double fork: the grandchild is orphaned
    if os.fork() == 0:
        os.setsid(); time.sleep(300)
    os._exit(0)
time.sleep(0.2)
print("pids", " ".join(str(p.pid) for p in kids), flush=True)
time.sleep(300)
"""


def test_cancel_kills_a_job_that_ignores_sigterm_and_its_escaped_children(api):
    job = submit(api, ["python3", "-c", STUBBORN])
    line = wait_until(lambda: [x for x in log_text(api, job["id"]) if x.startswith("pids")],
                      timeout=20)[0]
    marker = f"{job['id']}.1"
    tree = marked_processes(marker)
    assert len(tree) >= 4, tree  # main, two children, the double-forked orphan
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    done = wait_state(api, job["id"], timeout=30)
    assert done["state"] == "canceled"
    receipt = done["cancel_receipt"]
    assert receipt["sigterm_obeyed"] is False and receipt["signals"] == ["SIGTERM", "SIGKILL"]
    assert len(receipt["processes_killed"]) >= 2  # at least main and its TERM-proof child
    # `canceled` is written only once no process of the job is left.
    for pid in [int(x) for x in line.split()[1:]] + [p.pid for p in tree]:
        assert not _alive(pid), pid


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_cancel_while_waiting_for_a_retry(api):
    job = submit(api, "exit 1", retry={"max_retries": 3, "backoff_s": 60, "on": ["error"]})
    waiting = wait_until(lambda: (j := get(api, job["id"]))["attempt"] == 2 and j, timeout=20)
    assert waiting["state"] == "queued" and waiting["substate"] == "waiting_for_retry"
    assert waiting["waiting"]["reason"] == "retry_backoff" and waiting["next_retry_at"]
    r = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "canceled"
    events = api.get(f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"})
    assert '"attempt_ended"' in events.text
