"""Two replicas on one PostgreSQL: one daemon leads; when it stops answering (SIGSTOP: a pause,
a partition), the other takes over within its lease, and the old one, let go on, stands by.

Each replica has its own data dir, as on two machines.
"""

from __future__ import annotations

import signal
import time
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
def replicas(tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    url, admin, name = pg_database()
    env = {"JOBYARD_LEADER_LEASE_S": str(LEASE_S)}
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
