"""jobyard.job, the helper a job reports with: a real job through a real server, and the
sender's behaviour (coalescing, a server that is away, refusals) against a small fake server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import jobyard.job
from jobyard.job import Reporter
from jobyard.testing import free_port, wait_until
from tests.api.helpers import get, log_text, scratch, submit, wait_state


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


JOB = """
import os, time, jobyard.job as job
job.progress(step="loading")
for i in range(1, 6):
    job.progress(i * 10, step="processing_images", metadata={"imagesProcessed": i * 100},
                 throughput=(50.0, "img/s"), items_done=i * 100, items_total=1000)
    job.metric("loss", 1.0 / i)
    time.sleep(0.2)
while not os.path.exists(os.environ["GO_ON"]):
    time.sleep(0.02)
with open("predictions.csv", "w") as f:
    f.write("a\\nb\\n")
job.output("predictions.csv", "predictions.csv", records=2)
job.progress(100, metadata={"imagesProcessed": 1000})
job.substate("finalizing")
"""


def test_a_python_job_reports_progress_step_metadata_and_eta(api, tmp_path):
    go_on = tmp_path / "go_on"
    job = submit(api, ["python3", "-c", JOB], env={"GO_ON": str(go_on)},
                 workdir=str(scratch(tmp_path)))
    mid = wait_until(lambda: (j := get(api, job["id"]))["progress"] == 50.0 and j, timeout=30)
    assert mid["state"] == "running" and mid["substate"] == "processing"
    assert mid["current_step"] == "processing_images"
    assert mid["metadata"] == {"imagesProcessed": 500}
    assert mid["throughput"] == {"value": 50.0, "unit": "img/s"}
    assert mid["items"] == {"done": 500, "total": 1000}
    # 10 % every 0.2 s: the other half is about a second away (generous bounds for CI).
    eta = epoch(mid["estimated_completion"])
    assert time.time() - 1 < eta < time.time() + 10
    go_on.touch()
    done = wait_state(api, job["id"])
    assert done["state"] == "completed", log_text(api, job["id"])
    assert (done["progress"], done["metadata"]) == (100.0, {"imagesProcessed": 1000})
    assert abs(epoch(done["estimated_completion"]) - epoch(done["finished_at"])) < 2
    assert log_text(api, job["id"]) == []  # no warning from the helper
    with api.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    progress = [e for e in events if e["kind"] == "progress"]
    assert progress and progress[-1]["progress"] == 100.0
    assert any(e.get("substate") == "finalizing" for e in progress)
    assert len(progress) < 15  # throttled: not one per call


@pytest.fixture
def outside_a_job(monkeypatch) -> Iterator[None]:
    for name in ("JOBYARD_URL", "JOBYARD_JOB_ID", "JOBYARD_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(jobyard.job._state, "reporter", None)
    monkeypatch.setitem(jobyard.job._state, "warned", set())
    yield


def test_outside_a_job_it_warns_once_and_does_nothing(outside_a_job):
    with pytest.warns(RuntimeWarning, match="not running inside a Jobyard job"):
        jobyard.job.progress(10, step="x")
    jobyard.job.progress(20)  # no second warning (pytest turns warnings into errors)
    jobyard.job.output("a", "a.csv")
    jobyard.job.metric("m", 1)
    assert jobyard.job.flush() is True


class FakeServer:
    """Answers every report with ``status``; keeps the bodies it got."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.bodies.append(json.loads(body))
                answer = json.dumps({"ok": fake.status < 300}).encode()
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(monkeypatch) -> Iterator[FakeServer]:
    monkeypatch.setitem(jobyard.job._state, "warned", set())
    server = FakeServer()
    yield server
    server.close()


def test_reports_are_coalesced_and_never_block_the_job(fake):
    reporter = Reporter(fake.url, "job_x", "jyt_x", interval=0.25)
    slowest = 0.0
    started = time.monotonic()
    for i in range(1000):
        t = time.perf_counter()
        reporter.submit({"progress": i / 10, "metadata": {f"k{i % 3}": i}})
        slowest = max(slowest, time.perf_counter() - t)
    reporter.submit({"outputs": [{"name": "a", "path": "/a", "records": None}]})
    assert reporter.flush(5)
    elapsed = time.monotonic() - started
    assert slowest < 0.05  # a lock and a dict merge, never a request
    assert len(fake.bodies) <= 2 + elapsed / 0.25
    last = fake.bodies[-1]
    assert last["progress"] == 99.9 and last["metadata"] == {"k0": 999, "k1": 997, "k2": 998}
    seqs = [b["seq"] for b in fake.bodies]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(b.get("outputs") == [{"name": "a", "path": "/a", "records": None}]
               for b in fake.bodies)


def test_a_server_that_is_briefly_away_gets_the_report_later():
    port = free_port()
    reporter = Reporter(f"http://127.0.0.1:{port}", "job_x", "jyt_x", interval=0.05)
    reporter.submit({"progress": 10, "metadata": {"a": 1}})
    reporter.submit({"progress": 20, "metadata": {"b": 2}})
    assert reporter.flush(0.3) is False  # nobody there: bounded, no exception
    reporter.submit({"progress": 30})
    server = FakeServer(port)
    try:
        assert reporter.flush(10)
        assert server.bodies[-1]["progress"] == 30
        assert server.bodies[-1]["metadata"] == {"a": 1, "b": 2}  # nothing merged away
    finally:
        server.close()


def test_a_refusal_closes_reporting(fake, capfd):
    fake.status = 409
    reporter = Reporter(fake.url, "job_x", "jyt_x", interval=0.01)
    reporter.submit({"progress": 10})
    wait_until(lambda: fake.bodies, timeout=5)
    wait_until(lambda: "no more reports are sent" in capfd.readouterr().err, timeout=5)
    reporter.submit({"progress": 20})
    assert reporter.flush(1) and len(fake.bodies) == 1


def test_bad_arguments_never_raise_into_the_job(outside_a_job, monkeypatch, capfd):
    monkeypatch.setenv("JOBYARD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("JOBYARD_JOB_ID", "job_x")
    monkeypatch.setenv("JOBYARD_JOB_TOKEN", "jyt_x")
    jobyard.job.progress("not a number")
    jobyard.job.metric("loss", float("nan"))
    jobyard.job.substate("sleeping")
    err = capfd.readouterr().err
    assert "progress() ignored" in err and "metric() ignored" in err
    assert "unknown substate" in err
