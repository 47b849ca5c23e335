"""Pause and resume end to end: real jobs on a real server, their processes read from /proc."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import psutil
import pytest

from jobyard.api.dialects.states import dialect_status
from jobyard.core.states import JobState
from jobyard.testing import ServerProcess, is_paused, marked_processes, wait_until
from tests.api.helpers import get, log_text, submit, wait_state
from tests.events.receiver import Receiver

ENV = {
    "JOBYARD_KILL_GRACE_S": "5",
    "JOBYARD_PRICE_CPU_HOUR": "3600",  # a CPU costs 1 a second
    "JOBYARD_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
    "JOBYARD_WEBHOOK_RETRY_SCHEDULE_S": "[0.2, 0.4, 0.8]",
    "JOBYARD_WEBHOOK_POLL_INTERVAL_S": "0.2",
}
# Prints a counter every 50 ms, with a child that burns CPU (so that "no CPU used while paused"
# says something), until it has printed ``LINES`` lines; then it ends its child and exits 0.
COUNTER = r"""
import subprocess, sys, time
lines = int(sys.argv[1])
burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
for i in range(lines):
    print(i, flush=True)
    time.sleep(0.05)
burner.kill(); burner.wait()
"""
# Ends on SIGTERM with a last word (exit 0): only a running process can say it.
POLITE = r"""
import signal, sys, time
def bye(*_):
    print("got SIGTERM", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, bye)
i = 0
while True:
    print(i, flush=True); i += 1; time.sleep(0.05)
"""
# A measurement window: how long "nothing moves" is watched (not a wait for a condition).
QUIET_S = 0.5
ORG = "default"
XPLENTY = {"Accept": "application/vnd.xplenty+json; version=2"}


@pytest.fixture(scope="module")
def srv(database_url, tmp_path_factory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("pause"), database_url=database_url, env=ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.client() as client:
        yield client


def counter(api: httpx.Client, lines: int = 100_000, **body: object) -> dict:
    job = submit(api, ["python3", "-c", COUNTER, str(lines)], **body)
    wait_until(lambda: len(log_text(api, job["id"])) >= 3, timeout=20)
    return job


def processes(uid: str) -> list[psutil.Process]:
    return marked_processes(f"{uid}.1")


def proc_stat(pid: int) -> tuple[str, int]:
    """State letter and CPU ticks (utime + stime) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return fields[0].decode(), int(fields[11]) + int(fields[12])


def all_stopped(uid: str) -> list[psutil.Process] | None:
    procs = processes(uid)
    return procs if len(procs) >= 2 and all(is_paused(p.pid) for p in procs) else None


def test_pause_stops_every_process_and_resume_lets_it_finish(api):
    job = counter(api, lines=60)
    r = api.post(f"/v1/jobs/{job['id']}/pause")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "paused" and r.json()["paused_at"]
    again = api.post(f"/v1/jobs/{job['id']}/pause")  # as a repeated cancel: 200, unchanged
    assert again.status_code == 200 and again.json()["state"] == "paused"

    stopped = wait_until(lambda: all_stopped(job["id"]), timeout=10)
    supervisor = psutil.Process(stopped[0].ppid())
    while supervisor.environ().get("JOBYARD_JOB_MARKER"):  # up to the job's main process' parent
        supervisor = psutil.Process(supervisor.ppid())
    assert not is_paused(supervisor.pid)  # it keeps draining the log
    lines, cpu = len(log_text(api, job["id"])), {p.pid: proc_stat(p.pid)[1] for p in stopped}
    time.sleep(QUIET_S)
    assert len(log_text(api, job["id"])) == lines
    assert {p.pid: proc_stat(p.pid)[1] for p in stopped} == cpu
    assert get(api, job["id"])["state"] == "paused"

    r = api.post(f"/v1/jobs/{job['id']}/resume")
    assert r.status_code == 202 and r.json()["state"] == "running"
    assert r.json()["paused_at"] is None and r.json()["paused_s"] >= QUIET_S
    again = api.post(f"/v1/jobs/{job['id']}/resume")
    assert again.status_code == 200 and again.json()["state"] == "running"
    wait_until(lambda: len(log_text(api, job["id"])) > lines, timeout=10)
    done = wait_state(api, job["id"], timeout=30)
    assert done["state"] == "completed", done
    assert log_text(api, job["id"]) == [str(i) for i in range(60)]
    events = api.get(f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"})
    assert '"to":"paused"' in events.text.replace(" ", "")


def test_only_a_running_job_pauses_and_only_a_paused_one_resumes(api):
    finished = submit(api, "true")
    wait_state(api, finished["id"])
    for verb in ("pause", "resume"):
        r = api.post(f"/v1/jobs/{finished['id']}/{verb}")
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "CONFLICT" and "completed" in error["message"]
        assert error["details"] == {"state": "completed"}
    blocker = submit(api, "sleep 30", resources={"gpus": 4})
    wait_state(api, blocker["id"], "running")
    queued = submit(api, "true", resources={"gpus": 1})
    assert get(api, queued["id"])["state"] == "queued"
    r = api.post(f"/v1/jobs/{queued['id']}/pause")
    assert r.status_code == 409 and "only a running job can be paused" in r.json()["error"][
        "message"]
    r = api.post(f"/v1/jobs/{queued['id']}/resume")
    assert r.status_code == 409 and "only a paused job can be resumed" in r.json()["error"][
        "message"]
    assert api.post(f"/v1/jobs/{blocker['id']}/cancel").status_code == 202
    r = api.post(f"/v1/jobs/{blocker['id']}/pause")  # canceling: no longer pausable
    assert r.status_code == 409 and "canceling" in r.json()["error"]["message"]
    assert api.post("/v1/jobs/job_nosuchjob/pause").status_code == 404
    wait_state(api, queued["id"])


def test_another_org_gets_404(api, srv):
    assert api.post("/v1/orgs", json={"name": "pause-outsiders"}).status_code == 201
    assert api.post("/v1/users", json={"username": "otto", "org": "pause-outsiders"}
                    ).status_code == 201
    key = api.post("/v1/keys", json={"name": "k", "username": "otto"}).json()["key"]
    job = counter(api)
    with srv.client(key) as otto:
        for verb in ("pause", "resume"):
            for ref in (job["id"], job["number"]):
                r = otto.post(f"/v1/jobs/{ref}/{verb}")
                assert r.status_code == 404 and r.json()["error"]["code"] == "JOB_NOT_FOUND"
    assert get(api, job["id"])["state"] == "running"
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    wait_state(api, job["id"])


def test_cancel_of_a_paused_job_is_obeyed_and_leaves_no_process(api):
    job = submit(api, ["python3", "-c", POLITE])
    wait_until(lambda: len(log_text(api, job["id"])) >= 2, timeout=20)
    assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    wait_until(lambda: (p := processes(job["id"])) and all(
        is_paused(x.pid) for x in p), timeout=10)
    r = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "canceling"
    done = wait_state(api, job["id"], timeout=20)
    assert done["state"] == "canceled"
    # It ran again to see the SIGTERM (within the 5 s grace: no SIGKILL was needed).
    assert done["cancel_receipt"]["sigterm_obeyed"] is True, done["cancel_receipt"]
    assert log_text(api, job["id"])[-1] == "got SIGTERM"
    assert processes(job["id"]) == []


def test_the_time_limit_does_not_run_while_paused(api):
    job = counter(api, time_limit_s=1)
    assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    paused_at = time.time()
    wait_until(lambda: all_stopped(job["id"]), timeout=10)
    # Paused for twice its whole time limit: it must not time out meanwhile.
    while time.time() < paused_at + 2.0:
        assert get(api, job["id"])["state"] == "paused"
        time.sleep(0.1)
    resumed = api.post(f"/v1/jobs/{job['id']}/resume").json()
    assert resumed["state"] == "running" and resumed["paused_s"] >= 2.0
    done = wait_state(api, job["id"], timeout=20)
    assert done["state"] == "timeout", done
    started, ended = (datetime.fromisoformat(done[k]).timestamp()
                      for k in ("started_at", "finished_at"))
    # It ran its whole second (plus the pause), and was stopped soon after.
    assert ended - started >= 1.0 + resumed["paused_s"] - 0.05
    assert ended - started < 1.0 + resumed["paused_s"] + 5.0
    wait_until(lambda: not processes(job["id"]), timeout=10)


def test_cost_keeps_accruing_while_paused(api):
    job = counter(api)
    assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    wait_until(lambda: all_stopped(job["id"]), timeout=10)
    first = get(api, job["id"])["cost"]
    assert first["rate_per_hour"] > 0
    # The GPUs (here: the CPU) stay held, and so billed.
    wait_until(lambda: get(api, job["id"])["cost"]["accrued"] > first["accrued"], timeout=10)
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    wait_state(api, job["id"])


def test_the_job_paused_and_running_webhooks_fire(api):
    receiver = Receiver().start()
    try:
        job = counter(api, webhook={"url": receiver.url + "/hook",
                                    "events": ["paused", "running"]})
        assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
        msg = wait_until(lambda: [m for m in receiver.messages
                                  if m.json["type"] == "job.paused"], timeout=20)[0]
        assert msg.json["data"]["job"]["id"] == job["id"]
        assert msg.json["data"]["job"]["state"] == "paused"
        assert msg.json["data"]["event"]["data"]["from"] == "running"
        assert api.post(f"/v1/jobs/{job['id']}/resume").status_code == 202
        wait_until(lambda: len([m for m in receiver.messages
                                if m.json["type"] == "job.running"]) >= 2, timeout=20)
        assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
        wait_state(api, job["id"])
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def paused_job(srv: ServerProcess) -> Iterator[dict]:
    with srv.client() as api:
        job = counter(api)
        assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
        yield job
        assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
        wait_state(api, job["id"])


def dialect_view(srv: ServerProcess, dialect: str, job: dict) -> str:
    """The job's status as ``dialect``'s own job call shows it."""
    if dialect == "xplenty":
        basic = base64.b64encode(srv.admin_key.encode()).decode()
        with httpx.Client(base_url=f"{srv.url}/{ORG}/api", timeout=10,
                          headers={**XPLENTY, "Authorization": f"Basic {basic}"}) as xp:
            return str(xp.get(f"/jobs/{job['number']}").json()["status"])
    with srv.client() as api:
        if dialect == "tensorpool":
            return str(api.get(f"/job/info/{job['id']}").json()["job_info"]["status"])
        return str(api.get(f"/v2/jobs/{job['id']}/status").json()["status"])


@pytest.mark.parametrize(("dialect", "word"), [
    ("tensorpool", "running"), ("tensorone", "paused"), ("xplenty", "running")])
def test_each_dialect_shows_a_paused_job_per_the_one_table(srv, paused_job, dialect, word):
    assert dialect_status(dialect, JobState.PAUSED) == word  # the table says so...
    assert dialect_view(srv, dialect, paused_job) == word  # ...and so does its API


def test_pause_and_resume_are_recorded_with_who_asked(api):
    job = counter(api)
    assert api.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    assert api.post(f"/v1/jobs/{job['id']}/resume").status_code == 202
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    wait_state(api, job["id"])
    events = api.get(f"/v1/jobs/{job['id']}/events", headers={"Accept": "text/event-stream"})
    text = events.text.replace(" ", "")
    assert '"from":"running","to":"paused","by":"admin"' in text
    assert '"from":"paused","to":"running","by":"admin"' in text
