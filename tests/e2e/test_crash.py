"""SIGKILL the server while jobs run, restart it: nothing accepted is lost."""

import os
import signal

import psutil

from jobyard.store.files import run_dir
from jobyard.testing import ServerProcess, marked_processes, wait_until
from tests.api.helpers import get, log_text, submit, wait_state

IGNORES_TERM = ["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                "signal.SIG_IGN); print('up', flush=True); time.sleep(300)"]


marked = marked_processes



def test_kill_and_restart_adopts_records_and_cancels(srv):
    api = srv.client()
    long = submit(api, "echo start-long; sleep 2; echo done-long; exit 7")
    short = submit(api, "sleep 0.3; echo done-short")
    lost = submit(api, "sleep 60")
    stubborn = submit(api, IGNORES_TERM, resources={"gpus": 4})
    later = submit(api, "echo later", resources={"gpus": 1})
    for job in (long, short, lost, stubborn):
        # `short` runs 0.3 s: on a loaded machine it may have ended before it is looked at.
        wait_state(api, job["id"], {"running", "completed"} if job is short else "running")
    wait_until(lambda: "up" in log_text(api, stubborn["id"]))
    assert get(api, later["id"])["state"] == "queued"
    assert api.post(f"/v1/jobs/{stubborn['id']}/cancel").status_code == 202
    lost_runtime = get(api, lost["id"])

    srv.kill()
    # While no server watches: `short` ends by itself; `lost` loses its supervisor and job.
    wait_until(lambda: not marked(f"{short['id']}.1"), timeout=10)
    supervisor = psutil.Process(_supervisor_pid(srv, lost_runtime))
    for p in [supervisor, *marked(f"{lost['id']}.1")]:
        os.kill(p.pid, signal.SIGKILL)
    wait_until(lambda: not marked(f"{lost['id']}.1"), timeout=10)

    srv.start()
    api = srv.client()
    assert wait_state(api, short["id"])["state"] == "completed"
    assert "done-short" in log_text(api, short["id"])
    done_long = wait_state(api, long["id"])
    assert done_long["state"] == "error" and done_long["exit_code"] == 7
    assert log_text(api, long["id"]) == ["start-long", "done-long"]
    gone = wait_state(api, lost["id"])
    assert gone["state"] == "failed" and "supervisor" in gone["message"]
    canceled = wait_state(api, stubborn["id"])
    assert canceled["state"] == "canceled" and not marked(f"{stubborn['id']}.1")
    assert wait_state(api, later["id"])["state"] == "completed"
    listed = api.get("/v1/jobs", params={"limit": 100}).json()["items"]
    assert {j["id"] for j in listed} >= {long["id"], short["id"], lost["id"], stubborn["id"],
                                         later["id"]}
    assert not [j for j in listed if j["state"] not in ("completed", "error", "failed",
                                                        "canceled")]


def _supervisor_pid(srv: ServerProcess, job: dict) -> int:
    import json

    path = run_dir(srv.data_dir, job["id"], 1) / "supervisor.json"
    return json.loads(path.read_text())["supervisor_pid"]
