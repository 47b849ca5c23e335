"""The real ``tp`` CLI (tensorpool 0.0.9) drives jobs on a real Jobyard server: init, push a
project, listen, info, list, pull, cancel, delete, teardown."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.testing import ServerProcess, marked_processes, wait_until
from tests.api.dialects.tensorpool.conftest import Tp

MAX_UPLOAD = 8_000_000


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    """This module's server accepts projects of at most MAX_UPLOAD bytes, and counts 8 CPUs
    (room for its clusters of one-CPU instances)."""
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), database_url=database_url,
                        env={"JOBYARD_TENSORPOOL_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
                             "JOBYARD_CPUS": "8"})
    srv.start()
    yield srv
    srv.stop()


def claim_cluster(server: ServerProcess, count: int = 1) -> str:
    with server.client() as api:
        r = api.post("/v1/clusters", json={"instance_type": "cpu-1", "instance_count": count})
        assert r.status_code == 202, r.text
        cid = r.json()["cluster_id"]
        wait_until(lambda: api.get(f"/v1/clusters/{cid}").json()["state"] == "ready", 20)
    return cid


@pytest.fixture(scope="module")
def cluster(server: ServerProcess) -> str:
    return claim_cluster(server, count=3)


def job_id_of(push: object) -> str:
    out = push.stdout  # type: ignore[attr-defined]
    found = re.search(r"^Job ID: (\S+)$", out, re.M)
    assert found, out + push.stderr  # type: ignore[attr-defined]
    return found.group(1)


def job_info(server: ServerProcess, job_id: str) -> dict:
    with server.client() as api:
        r = api.get(f"/job/info/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()["job_info"]


def wait_status(server: ServerProcess, job_id: str, statuses: set[str], timeout: float = 60):
    return wait_until(lambda: (info := job_info(server, job_id))["status"] in statuses and info,
                      timeout=timeout, interval=0.1)


def write_project(root: Path, commands: list[str], outputs: list[str] = (),
                  requirements: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if requirements:
        (root / "requirements.txt").write_text("# no packages: the venv itself is tested\n")
    ignore = ["*.pyc", ".git", "scratch/", "*.tp.toml"]
    (root / "job.tp.toml").write_text(  # JSON arrays of strings are TOML arrays too
        f"commands = {json.dumps(commands)}\noutputs = {json.dumps(list(outputs))}\n"
        f"ignore = {json.dumps(ignore)}\n")
    return root


def test_push_listen_info_list_pull(tp: Tp, server: ServerProcess, cluster: str,
                                    tmp_path: Path) -> None:
    init_dir = tmp_path / "init"
    init_dir.mkdir()
    init = tp("job", "init", cwd=init_dir)
    assert init.returncode == 0, init.stdout
    template = (init_dir / "job.tp.toml").read_text()
    assert "commands" in template and "outputs" in template and "ignore" in template

    proj = write_project(tmp_path / "proj", [
        "python main.py",
        "python -c \"import os; print('files:', sorted(os.listdir('.')))\"",
    ], outputs=["out/", "model_*.bin"], requirements=True)
    (proj / "main.py").write_text(
        "import os, sys\n"
        "print('in venv:', sys.prefix != sys.base_prefix)\n"
        "os.makedirs('out', exist_ok=True)\n"
        "open('out/result.txt', 'w').write(str(len(open('data.bin', 'rb').read())))\n"
        "open('model_1.bin', 'wb').write(b'weights')\n"
        "open('not_kept.txt', 'w').write('x')\n")
    (proj / "data.bin").write_bytes(os.urandom(6_000_000))  # several upload pieces
    (proj / "stale.pyc").write_bytes(b"x")
    (proj / "scratch").mkdir()
    (proj / "scratch" / "junk.txt").write_text("ignored directory")
    (proj / ".git").mkdir()
    (proj / ".git" / "HEAD").write_text("ref")

    push = tp("job", "push", "job.tp.toml", cluster, cwd=proj)
    assert push.returncode == 0, push.stdout + push.stderr
    assert "Uploading:" in push.stdout  # progress between pieces
    job_id = job_id_of(push)

    listen = tp("job", "listen", job_id, cwd=proj)
    assert listen.returncode == 0, listen.stdout
    out = listen.stdout
    assert "requirements.txt found" in out
    assert "in venv: True" in out
    assert out.index("$ python main.py") < out.index("in venv: True") < out.index("files:")
    files_line = next(line for line in out.splitlines() if line.startswith("files:"))
    assert "'data.bin'" in files_line and "'main.py'" in files_line
    for ignored in ("stale.pyc", "scratch", ".git", "job.tp.toml"):
        assert f"'{ignored}'" not in files_line
    assert f"Job {job_id} completed (exit code 0)" in out

    # A finished job's log is replayed.
    again = tp("job", "listen", job_id, cwd=proj)
    assert again.returncode == 0 and "in venv: True" in again.stdout

    info = tp("job", "info", job_id)
    assert info.returncode == 0
    assert re.search(r"STATUS\s*\tcompleted", info.stdout), info.stdout
    data = job_info(server, job_id)
    assert data["status"] == "completed" and data["exit_code"] == 0
    assert data["cluster_id"] == cluster and data["instance_type"] == "cpu-1"
    assert data["commands"][0] == "python main.py"

    listing = tp("job", "list")
    assert listing.returncode == 0 and job_id in listing.stdout
    assert re.search(rf"{job_id}\s*\tproj\s*\tcompleted", listing.stdout), listing.stdout

    dest = tmp_path / "dest"
    dest.mkdir()
    pull = tp("job", "pull", job_id, cwd=dest)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    assert "Job files pulled successfully" in pull.stdout
    assert (dest / "out" / "result.txt").read_text() == "6000000"
    assert (dest / "model_1.bin").read_bytes() == b"weights"
    assert not (dest / "not_kept.txt").exists()

    (dest / "model_1.bin").write_bytes(b"local change")
    skip = tp("job", "pull", job_id, cwd=dest)
    assert skip.returncode == 0 and "Skipping model_1.bin" in skip.stdout
    assert (dest / "model_1.bin").read_bytes() == b"local change"
    force = tp("job", "pull", job_id, "--force", cwd=dest)
    assert force.returncode == 0 and "Overwriting model_1.bin" in force.stdout
    assert (dest / "model_1.bin").read_bytes() == b"weights"


def test_failing_command_stops_the_job(tp: Tp, server: ServerProcess, cluster: str,
                                       tmp_path: Path) -> None:
    proj = write_project(tmp_path / "p", ["echo first", "exit 3", "echo never"])
    job_id = job_id_of(tp("job", "push", "job.tp.toml", cluster, cwd=proj))
    listen = tp("job", "listen", job_id)
    assert listen.returncode == 1
    assert "first" in listen.stdout and "never" not in listen.stdout.replace("echo never", "")
    assert f"Job {job_id} error (exit code 3)" in listen.stdout
    assert job_info(server, job_id)["status"] == "error"
    pull = tp("job", "pull", job_id, cwd=tmp_path)
    assert pull.returncode == 0 and "No output files" in pull.stdout


def test_cancel_wait_idempotent_refused_and_delete(tp: Tp, server: ServerProcess, cluster: str,
                                                   tmp_path: Path) -> None:
    proj = write_project(tmp_path / "long", ["sleep 300"])
    job_id = job_id_of(tp("job", "push", "job.tp.toml", cluster, cwd=proj))
    wait_status(server, job_id, {"running"})
    with server.client() as api:
        number = api.get(f"/v1/jobs/{job_id}").json()["number"]

    refused = tp("job", "delete", job_id)
    assert refused.returncode == 1 and "only a finished job can be deleted" in refused.stdout

    cancel = tp("job", "cancel", job_id, "--no-input", "--wait", timeout=60)
    assert cancel.returncode == 0, cancel.stdout
    assert job_info(server, job_id)["status"] == "canceled"
    assert marked_processes(f"{number}.1") == []

    with server.client() as api:
        r = api.post(f"/job/cancel/{job_id}")
        assert r.status_code == 200 and r.json()["status"] == "canceled"
    again = tp("job", "cancel", job_id, "--no-input")
    assert again.returncode == 0 and "already canceled" in again.stdout

    done = job_id_of(tp("job", "push", "job.tp.toml", cluster,
                        cwd=write_project(tmp_path / "quick", ["true"])))
    wait_status(server, done, {"completed"})
    refused = tp("job", "cancel", done, "--no-input")
    assert refused.returncode == 1 and "cannot be canceled" in refused.stdout
    with server.client() as api:
        assert api.post(f"/job/cancel/{done}").status_code == 400
        workdir = Path(api.get(f"/v1/jobs/{done}").json()["workdir"])
    assert workdir.is_dir()

    deleted = tp("job", "delete", done)
    assert deleted.returncode == 0 and f"Job {done} deleted" in deleted.stdout
    assert not workdir.exists()
    gone = tp("job", "info", done)
    assert gone.returncode == 1 and "not found" in gone.stdout
    with server.client() as api:
        assert api.get(f"/job/info/{done}").status_code == 404


def test_bad_job_file_and_cluster_are_refused_before_upload(
        tp: Tp, server: ServerProcess, cluster: str, tmp_path: Path) -> None:
    proj = tmp_path / "bad"
    proj.mkdir()
    (proj / "job.tp.toml").write_text('commands = ["true"]\ngpu = "H100"\n')
    push = tp("job", "push", "job.tp.toml", cluster, cwd=proj)
    assert push.returncode == 1
    assert "unknown key(s) gpu" in push.stdout and "code = 4022" in push.stdout
    assert "Uploading" not in push.stdout

    (proj / "job.tp.toml").write_text('commands = []\n')
    push = tp("job", "push", "job.tp.toml", cluster, cwd=proj)
    assert push.returncode == 1 and "'commands' is empty" in push.stdout

    (proj / "job.tp.toml").write_text('commands = ["true"]\n')
    push = tp("job", "push", "job.tp.toml", "clu_doesnotexist", cwd=proj)
    assert push.returncode == 1
    assert "cluster clu_doesnotexist not found" in push.stdout and "code = 4004" in push.stdout


def test_too_large_project_is_refused(tp: Tp, server: ServerProcess, cluster: str,
                                      tmp_path: Path) -> None:
    proj = write_project(tmp_path / "huge", ["true"])
    (proj / "big.bin").write_bytes(os.urandom(MAX_UPLOAD + 1000))
    with server.client() as api:
        before = api.get("/v1/jobs").json()["items"]
    push = tp("job", "push", "job.tp.toml", cluster, cwd=proj)
    assert push.returncode == 1
    assert "more than this server accepts" in push.stdout
    with server.client() as api:
        assert api.get("/v1/jobs").json()["items"] == before  # no job was made
    assert not list((server.data_dir / "uploads").glob("*"))  # nothing left behind


def test_teardown_releases_the_cluster(tp: Tp, server: ServerProcess, tmp_path: Path) -> None:
    own = claim_cluster(server)
    proj = write_project(tmp_path / "td", ["echo done"])
    push = tp("job", "push", "job.tp.toml", own, "--teardown", cwd=proj)
    assert push.returncode == 0
    assert f"Teardown enabled: cluster {own} will be destroyed" in push.stdout
    job_id = job_id_of(push)
    wait_status(server, job_id, {"completed"})
    assert job_info(server, job_id)["teardown_cluster"] is True
    with server.client() as api:
        wait_until(lambda: api.get(f"/v1/clusters/{own}").status_code == 404
                   or api.get(f"/v1/clusters/{own}").json()["state"] == "released", 20)


def test_other_org_gets_403_and_links_are_signed(server: ServerProcess, cluster: str,
                                                 tp: Tp, tmp_path: Path) -> None:
    proj = write_project(tmp_path / "o", ["mkdir -p out && echo hi > out/a.txt"],
                         outputs=["out/"])
    job_id = job_id_of(tp("job", "push", "job.tp.toml", cluster, cwd=proj))
    wait_status(server, job_id, {"completed"})
    with server.client() as admin:
        assert admin.post("/v1/orgs", json={"name": "tp-other"}).status_code in (200, 201)
        assert admin.post("/v1/users", json={"username": "tp-stranger",
                                             "org": "tp-other"}).status_code in (200, 201)
        key = admin.post("/v1/keys", json={"username": "tp-stranger"}).json()["key"]
        links = admin.get(f"/job/pull/{job_id}").json()["download_map"]
    with server.client(key) as stranger:
        for method, path in (("GET", f"/job/info/{job_id}"), ("POST", f"/job/cancel/{job_id}"),
                             ("GET", f"/job/pull/{job_id}"),
                             ("DELETE", f"/job/delete/{job_id}")):
            r = stranger.request(method, path)
            assert r.status_code == 403 and r.json()["message"], (path, r.text)
    url = links["out/a.txt"]
    r = httpx.get(url)  # no Authorization: the link authorises itself
    assert r.status_code == 200 and r.text == "hi\n"
    assert r.headers["content-length"] == "3"
    assert httpx.get(url[:-3] + "xyz").status_code == 403


def test_list_shows_own_jobs_and_the_org_with_include_org(tp: Tp, server: ServerProcess) -> None:
    with server.client() as admin:
        org_id = admin.get("/v1/me").json()["org_id"]
        org = next(o["name"] for o in admin.get("/v1/orgs").json()["items"]
                   if o["id"] == org_id)
        admin.post("/v1/users", json={"username": "tp-colleague", "org": org})
        key = admin.post("/v1/keys", json={"username": "tp-colleague"}).json()["key"]
    with server.client(key) as colleague:
        theirs = colleague.post("/v1/jobs", json={"command": "true", "name": "colleagues"})
        assert theirs.status_code == 201
        theirs = theirs.json()["id"]
    mine = tp("job", "list")
    assert mine.returncode == 0 and theirs not in mine.stdout
    org_list = tp("job", "list", "--org")
    assert org_list.returncode == 0 and theirs in org_list.stdout


def test_sockets_refuse_a_bad_key_or_frame_with_a_message(server: ServerProcess) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws_url = server.url.replace("http://", "ws://")
    for path, first, code, words in (
        ("/job/listen/job_x", json.dumps({"TENSORPOOL_KEY": "wrong"}), 4001, "API key"),
        ("/job/push", json.dumps({"TENSORPOOL_KEY": None}), 4001, "missing API key"),
        ("/job/push", "not json", 4022, "JSON object"),
        ("/job/listen/job_missing00", json.dumps({"TENSORPOOL_KEY": server.admin_key}), 4004,
         "not found"),
    ):
        with connect(ws_url + path) as ws:
            ws.send(first)
            assert words in json.loads(ws.recv(timeout=10))["message"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == code, path
