"""``/job/push`` with archives our packer never makes (links, escaping names, CVE-2025-4517):
the push speaks the CLI's side of the socket itself and PUTs the archive to ``/job/upload``.
Each is refused with a message and close code 4022; no job, no workspace, no upload and no file
outside is left behind."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jobyard.testing import ServerProcess, wait_until
from tests.store.test_files import SENTINEL, archive, realpath_limit_archive


@pytest.fixture(scope="module")
def cluster(server: ServerProcess) -> str:
    with server.client() as api:
        r = api.post("/v1/clusters", json={"instance_type": "cpu-1", "instance_count": 1})
        assert r.status_code == 202, r.text
        cid = r.json()["cluster_id"]
        wait_until(lambda: api.get(f"/v1/clusters/{cid}").json()["state"] == "ready", 20)
    return cid


def params_of(command: str) -> dict:
    """The parameters the server gave a clientside step (its last argument)."""
    return json.loads(base64.b64decode(command.rsplit(" ", 1)[1]))


def push(server: ServerProcess, cluster: str, data: bytes) -> tuple[list[str], int]:
    """Push ``data`` as the packed project, answering the server's steps as the CLI would;
    returns the messages received and the close code."""
    messages: list[str] = []
    with connect(server.url.replace("http://", "ws://") + "/job/push") as ws:
        ws.send(json.dumps({"TENSORPOOL_KEY": server.admin_key}))
        ws.send(json.dumps({"tp_config": 'commands = ["true"]\n', "system": "Linux",
                            "cluster_id": cluster}))
        try:
            while True:
                frame = json.loads(ws.recv(timeout=30))
                if "message" in frame:
                    messages.append(frame["message"])
                if "command" not in frame:
                    continue
                step = params_of(frame["command"])
                if "url" not in step:  # start
                    out = {"path": "/client/side/archive.tgz", "name": "project"}
                else:  # send: all of it at once
                    r = httpx.put(f"{step['url']}?offset={step['offset']}", content=data)
                    assert r.status_code == 200, r.text
                    out = {"sent": len(data), "packed": len(data), "total": len(data),
                           "done": True, "sha256": hashlib.sha256(data).hexdigest()}
                ws.send(json.dumps({"type": "command_result", "exit_code": 0,
                                    "command_stdout": json.dumps(out) + "\n"}))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return messages, closed.rcvd.code


def workspaces_of(server: ServerProcess) -> set[Path]:
    home = server.data_dir / "workspaces"
    return set(home.iterdir()) if home.exists() else set()


def cve_archive(path: Path, server: ServerProcess) -> Path:
    """The realpath-limit attack aimed at the server's data directory (three levels above a
    workspace's project)."""
    dest = server.data_dir / "workspaces" / ("w" * 16) / "project"
    return realpath_limit_archive(path, dest, ups=3)


@pytest.mark.parametrize(("make", "why"), [
    (cve_archive, "symbolic link"),
    (lambda p, s: archive(p, [("ok.py", b"1"), ("data", "sym", "../../..")]), "symbolic link"),
    (lambda p, s: archive(p, [("ok.py", b"1"), ("h", "hard", "../../../flag")]), "hard link"),
    (lambda p, s: archive(p, [("../../../newfile", b"new")]), "leads out of the project"),
    (lambda p, s: archive(p, [("/tmp/newfile", b"new")]), "absolute path"),
])
def test_a_refused_archive_leaves_nothing_behind(server: ServerProcess, cluster: str,
                                                 tmp_path: Path, make, why) -> None:
    flag = server.data_dir / "flag"
    flag.write_bytes(SENTINEL)
    workspaces = workspaces_of(server)
    with server.client() as api:
        before = api.get("/v1/jobs").json()["items"]
    messages, code = push(server, cluster, make(tmp_path / "p.tar", server).read_bytes())
    assert code == 4022, messages
    assert why in messages[-1] and "the project archive is refused" in messages[-1]
    assert not any(str(server.data_dir) in m for m in messages)  # no path of the server
    assert flag.read_bytes() == SENTINEL and not (server.data_dir / "newfile").exists()
    assert workspaces_of(server) == workspaces
    wait_until(lambda: not list((server.data_dir / "uploads").iterdir()), 10)
    with server.client() as api:
        assert api.get("/v1/jobs").json()["items"] == before  # no job was made


def test_a_plain_archive_still_makes_a_job(server: ServerProcess, cluster: str,
                                           tmp_path: Path) -> None:
    data = archive(tmp_path / "ok.tgz", [("main.py", b"print(1)"), ("pkg/m.py", b"")])
    messages, code = push(server, cluster, data.read_bytes())
    assert code == 1000, messages
    assert "Uploaded 2 files." in messages
