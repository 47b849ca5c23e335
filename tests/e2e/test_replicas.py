"""Two replicas on one PostgreSQL: one daemon leads; when it stops answering (SIGSTOP: a pause,
a partition), the other takes over within its lease, and the old one, let go on, stands by.

Each replica has its own data dir, as on two machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import types
from collections.abc import Iterator

import httpx
import pytest

from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import submit, wait_state
from tests.conftest import drop_pg_database, pg_database

LEASE_S = 3.0


def role(server: ServerProcess) -> str:
    return httpx.get(f"{server.url}/healthz", timeout=5).json()["daemon"]


@pytest.fixture
def replicas(request, tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two replicas, the first leading; ``@pytest.mark.replica_env({...})`` adds settings."""
    url, admin, name = pg_database()
    marked = request.node.get_closest_marker("replica_env")
    env = {"JOBYARD_LEADER_LEASE_S": str(LEASE_S), **(marked.args[0] if marked else {})}
    first = ServerProcess(tmp_path / "one", database_url=url, env=env).start()
    wait_until(lambda: role(first) == "leader", timeout=10)
    second = ServerProcess(tmp_path / "two", database_url=url, env=env).start()
    yield first, second
    for server in (first, second):
        if server.proc and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()
    drop_pg_database(admin, name)


def test_a_paused_leader_loses_the_daemon_within_its_lease_and_stands_by(replicas):
    first, second = replicas
    assert role(second) == "standby"
    with second.client() as api:
        job = submit(api, "echo before")
        assert wait_state(api, job["id"])["state"] == "completed"  # run by the leader

        first.proc.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        wait_until(lambda: role(second) == "leader", timeout=LEASE_S + 5, interval=0.05)
        took_over = time.monotonic() - paused
        assert took_over <= 5.0  # the failover bound (lease 3 s, a standby asks at 0.2 s)

        job = submit(api, "echo after")
        assert wait_state(api, job["id"])["state"] == "completed"  # the new leader runs it

        first.proc.send_signal(signal.SIGCONT)  # its next renewal finds the lease gone
        wait_until(lambda: role(first) == "standby", timeout=LEASE_S + 5, interval=0.05)
        assert role(second) == "leader"
        job = submit(api, "echo still")
        assert wait_state(api, job["id"])["state"] == "completed"


# Prints a line, writes an output, waits for its release, prints another.
TWO_LINES = """
import os, time
print("one", flush=True)
open(os.path.join(os.environ["JOBYARD_OUTPUT_DIR"], "r.txt"), "w").write("result")
while not os.path.exists("release"):
    time.sleep(0.02)
print("two", flush=True)
"""


def test_every_replica_serves_the_files_of_a_job_another_ran(replicas):
    first, second = replicas  # the first leads: its daemon runs the job, in its data dir
    with second.client() as api:
        job = submit(api, ["python3", "-c", TWO_LINES])
        wait_state(api, job["id"], "running")
        assert get_job(api, job["id"])["assigned"]["replica"] == first.url
        follow = httpx.Client(base_url=second.url, timeout=30,
                              headers={"Authorization": f"Bearer {second.admin_key}"})
        with follow, follow.stream("GET", f"/v1/jobs/{job['id']}/logs",
                                   params={"follow": "true"}) as stream:
            events = sse_events(stream)
            assert next(events) == ("line", "one")
            page = api.get(f"/v1/jobs/{job['id']}/logs").json()
            assert [x["text"] for x in page["lines"]] == ["one"] and page["eof"] is False
            (first.data_dir / "runs" / f"{job['id']}.1" / "work" / "release").touch()
            assert next(events) == ("line", "two")
            assert next(events)[0] == "end"
        assert wait_state(api, job["id"])["state"] == "completed"
        page = api.get(f"/v1/jobs/{job['id']}/logs").json()
        assert [x["text"] for x in page["lines"]] == ["one", "two"] and page["eof"] is True
        assert api.get(f"/v1/jobs/{job['id']}/outputs/r.txt").text == "result"
        # TensorPool's signed download link (its errors in TensorPool's envelope), relayed.
        links = api.get(f"/job/pull/{job['id']}").json()["download_map"]
        assert links["r.txt"].startswith(second.url)
        assert httpx.get(links["r.txt"]).text == "result"
        assert not (second.data_dir / "runs" / f"{job['id']}.1").exists()  # all relayed

        # TensorPool's log socket, relayed too: the lines and the verdict.
        from websockets.sync.client import connect

        with connect(second.url.replace("http://", "ws://") + f"/job/listen/{job['id']}") as ws:
            ws.send(json.dumps({"TENSORPOOL_KEY": second.admin_key}))
            frames = [json.loads(ws.recv(timeout=10))]
            while "status" not in frames[-1]:
                frames.append(json.loads(ws.recv(timeout=10)))
        assert "\n".join(f["message"] for f in frames[:-1]) == "one\ntwo"
        assert frames[-1]["status"] == "success"

        # The replica that holds the files is gone: an answer that says so, never an empty
        # log claimed complete.
        first.kill()
        r = api.get(f"/v1/jobs/{job['id']}/logs")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["details"]["replica"] == first.url
        assert api.get(f"/v1/jobs/{job['id']}").status_code == 200  # the rest still served


def get_job(api: httpx.Client, ref: str) -> dict:
    r = api.get(f"/v1/jobs/{ref}")
    assert r.status_code == 200, r.text
    return r.json()


def sse_events(stream: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, text of its data) of each SSE frame of ``stream`` (lines: their text)."""
    event = None
    for raw in stream.iter_lines():
        if raw.startswith("event:"):
            event = raw.split(":", 1)[1].strip()
        elif raw.startswith("data:") and event:
            data = json.loads(raw.split(":", 1)[1])
            yield event, data.get("text", json.dumps(data))
            event = None


@pytest.mark.replica_env({"JOBYARD_TICK_INTERVAL_S": "30"})
def test_a_change_on_one_replica_wakes_the_others_at_once(replicas):
    """With ticks 30 s apart, only a wake-up from the replica that took the submit or the
    cancel makes the leader act within the test's deadlines."""
    _, second = replicas
    with second.client() as api:
        job = submit(api, "sleep 60")
        assert wait_state(api, job["id"], "running", timeout=10)
        stream = httpx.Client(base_url=second.url, timeout=30,
                              headers={"Authorization": f"Bearer {second.admin_key}"})
        with stream, stream.stream("GET", f"/v1/jobs/{job['id']}/events") as events:
            assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code in (200, 202)
            assert wait_state(api, job["id"], timeout=10)["state"] == "canceled"
            states = []
            for line in events.iter_lines():  # the standby streams the leader's commits
                if line.startswith("data:"):
                    states.append(json.loads(line.split(":", 1)[1])["state"])
                if "canceled" in states:
                    break
        assert states[-3:] == ["running", "canceling", "canceled"]


class RoundRobin:
    """A TCP proxy on a free loopback port that hands each new connection to the next of
    ``backends`` in turn: a load balancer without sticky sessions."""

    def __init__(self, backends: list[int]):
        self.backends = backends
        self.served = [0] * len(backends)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        turn = 0
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            index, turn = turn % len(self.backends), turn + 1
            self.served[index] += 1
            upstream = socket.create_connection(("127.0.0.1", self.backends[index]))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


def test_a_push_s_pieces_may_reach_any_replica(replicas, tmp_path):
    from jobyard.testing import client_venv
    from tests.api.dialects.tensorpool.conftest import REQUIREMENTS, ROOT, tp_runner
    from tests.api.dialects.tensorpool.test_jobs import claim_cluster, job_id_of, write_project

    first, second = replicas
    cluster = claim_cluster(first)
    balancer = RoundRobin([first.port, second.port])
    try:
        front = types.SimpleNamespace(url=f"http://127.0.0.1:{balancer.port}",
                                      admin_key=first.admin_key)
        proj = write_project(tmp_path / "proj", ["python3 -c \"print(len(open('data.bin', "
                                                 "'rb').read()))\""])
        (proj / "data.bin").write_bytes(os.urandom(9_000_000))  # three pieces at least
        tp = tp_runner(client_venv(REQUIREMENTS, ROOT) / "bin" / "tp", front)
        push = tp("job", "push", "job.tp.toml", cluster, cwd=proj)
        assert push.returncode == 0, push.stdout + push.stderr
        assert push.stdout.count("Uploading:") >= 1, push.stdout  # after a piece, before the last
        # Pieces go on consecutive connections, which alternate: with two pieces or more
        # (9 MB of random data, 4 MB first), each replica took one.
        assert min(balancer.served) >= 2
    finally:
        balancer.close()
    with first.client() as api:
        job_id = job_id_of(push)
        assert wait_state(api, job_id)["state"] == "completed"
        assert "9000000" in [line["text"] for line in api.get(f"/v1/jobs/{job_id}/logs")
                             .json()["lines"]]
