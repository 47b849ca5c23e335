"""The machine failing under a real server: a database locked past its busy timeout answers
503 and a full disk 507, both with ``Retry-After``; nothing answered 2xx is lost, nothing
refused is half-written, and the server serves again once the fault is gone."""

from __future__ import annotations

import sqlite3

from jobyard.testing import ServerProcess
from tests.conftest import fill_disk, tmpfs


def test_a_database_locked_past_the_busy_timeout_answers_503_then_recovers(tmp_path):
    with ServerProcess(tmp_path / "srv", env={"JOBYARD_DB_BUSY_TIMEOUT_S": "0.3"}) as srv, \
            srv.client() as api:
        assert api.post("/v1/jobs", json={"command": "true"}).status_code == 201
        other = sqlite3.connect(srv.data_dir / "jobyard.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        refused = api.post("/v1/jobs", json={"command": "echo refused"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert api.get("/v1/jobs").status_code == 200  # reads go on meanwhile
        other.execute("ROLLBACK")
        assert api.post("/v1/jobs", json={"command": "echo later"}).status_code == 201
        commands = [j["command"] for j in api.get("/v1/jobs").json()["items"]]
        assert sorted(commands) == ["echo later", "true"]


def test_a_full_disk_answers_507_and_loses_nothing_accepted(tmp_path):
    with tmpfs(tmp_path / "disk", "48m") as disk, ServerProcess(disk / "srv") as srv, \
            srv.client() as api:
        big = "true #" + "x" * 60_000
        assert api.post("/v1/jobs", json={"command": big}).status_code == 201
        filler = fill_disk(disk)
        accepted, refused = [], None
        for _ in range(400):  # until the room the database files had is used up
            answer = api.post("/v1/jobs", json={"command": big})
            assert answer.status_code in (201, 507), answer.text
            if answer.status_code == 507:
                refused = answer
                break
            accepted.append(answer.json()["id"])
        assert refused is not None, "the disk never filled"
        assert refused.json()["error"]["code"] == "STORAGE_FULL"
        assert int(refused.headers["Retry-After"]) > 0
        volume = api.post("/v1/storage", json={"name": "v1", "size_gb": 1})
        assert volume.status_code in (202, 507), volume.text
        filler.unlink()
        assert api.post("/v1/jobs", json={"command": "echo after"}).status_code == 201
        for job in accepted:
            assert api.get(f"/v1/jobs/{job}").status_code == 200
        total = api.get("/v1/jobs", params={"limit": 500}).json()["items"]
        assert len(total) == len(accepted) + 2  # the refused one was never written
