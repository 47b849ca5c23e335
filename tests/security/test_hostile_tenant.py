"""A job of org A plays the hostile tenant against org B's running job and the server.

Each attack must fail, B's job must complete untouched, and the server must keep serving. The
server runs as root (as here and in CI), so each org's jobs run as its own OS identity inside
cgroups; on a machine where that cannot be, the module is skipped (its reason says why).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.executors.cgroups import detect
from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import get, log_text, submit, wait_state
from tests.api.test_auth import make_user

CGROUPS, WHY = detect()
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or CGROUPS is None,
    reason="jobs run as tenants' own uids only when the server is root, with cgroups: "
           f"{WHY or 'not root'}")

SECRET = "b-secret-7f3a"
# B's job: a secret in its env, a line in its log, a file in its outputs and its workdir; it
# waits (reporting its pid) until released, then checks its files are still its own.
VICTIM = """
import os, sys, time
print("b-log-line", flush=True)
open(os.path.join(os.environ["JOBYARD_OUTPUT_DIR"], "b-out.txt"), "w").write("b-output")
open("b-work.txt", "w").write("b-work")
print("pid", os.getpid(), flush=True)
while not os.path.exists("release"):
    time.sleep(0.05)
ok = open("b-work.txt").read() == "b-work" and open(
    os.path.join(os.environ["JOBYARD_OUTPUT_DIR"], "b-out.txt")).read() == "b-output"
print("untouched" if ok else "tampered", flush=True)
"""

# A's job: every attack, each printing "<name> <outcome>"; an outcome of "ok" is a breach.
ATTACKER = r"""
import ctypes, errno, glob, os, signal, sys
data, b_run, b_pid, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def attempt(name, fn):
    try:
        fn()
        print(name, "ok", flush=True)
    except OSError as exc:
        print(name, errno.errorcode.get(exc.errno, exc.errno), flush=True)

def read(path):
    return lambda: open(path, "rb").read(1)

def write(path):
    return lambda: open(path, "w").write("x")

def ptrace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, b_pid, 0, 0) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")

attempt("list-data-dir", lambda: os.listdir(data))
attempt("list-runs", lambda: os.listdir(os.path.join(data, "runs")))
attempt("read-store", read(store) if store != "-" else lambda: None)
attempt("read-b-log", read(os.path.join(b_run, "log")))
attempt("read-b-exit", read(os.path.join(b_run, "supervisor.json")))
attempt("list-b-outputs", lambda: os.listdir(os.path.join(b_run, "outputs")))
attempt("read-b-output", read(os.path.join(b_run, "outputs", "b-out.txt")))
attempt("read-b-work", read(os.path.join(b_run, "work", "b-work.txt")))
attempt("write-b-work", write(os.path.join(b_run, "work", "b-work.txt")))
attempt("read-b-environ", read(f"/proc/{b_pid}/environ"))
attempt("kill-b", lambda: os.kill(b_pid, signal.SIGKILL))
attempt("stop-b", lambda: os.kill(b_pid, signal.SIGSTOP))
attempt("ptrace-b", ptrace)
attempt("write-data-dir", write(os.path.join(data, "planted")))
attempt("write-runs", write(os.path.join(data, "runs", "planted")))
attempt("read-homes", lambda: os.listdir(os.path.join(data, "homes")))
attempt("own-work", write("mine.txt"))
nnp = next(x.split()[1] for x in open("/proc/self/status") if x.startswith("NoNewPrivs"))
print("uid", os.getuid(), "nnp", nnp, "groups", os.getgroups(), flush=True)
"""
BOMB = """
import os, time
n = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    except BlockingIOError:
        pass
print("forked", n, flush=True)
time.sleep(60)
"""
EXPECTED_DENIED = ["list-data-dir", "list-runs", "read-b-log", "read-b-exit", "list-b-outputs",
                   "read-b-output", "read-b-work", "write-b-work", "read-b-environ", "kill-b",
                   "stop-b", "ptrace-b", "write-data-dir", "write-runs", "read-homes"]


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The store in the data dir for SQLite (where the attack can aim at it), a small pids
    limit for the fork bomb."""
    url = None if database_url.startswith("sqlite") else database_url
    srv = ServerProcess(tmp_path_factory.mktemp("srv") / "data", database_url=url,
                        env={"JOBYARD_JOB_PIDS_MAX": "32"})
    srv.start()
    yield srv
    srv.stop()


def victim(b: httpx.Client) -> tuple[dict, int]:
    job = submit(b, ["python3", "-c", VICTIM], time_limit_s=120, env={"B_SECRET": SECRET})
    line = wait_until(lambda: next((t for t in log_text(b, job["id"]) if t.startswith("pid ")),
                                   None), timeout=20)
    return job, int(line.split()[1])


def release(server: ServerProcess, job: dict) -> None:
    work = server.data_dir / "runs" / f"{job['id']}.1" / "work"
    (work / "release").touch()


def test_a_tenant_cannot_reach_another_tenants_job_or_the_server(server, orgs):
    a, b = orgs
    b_job, b_pid = victim(b)
    b_run = server.data_dir / "runs" / f"{b_job['id']}.1"
    store = server.data_dir / "jobyard.db"
    attack = submit(a, ["python3", "-c", ATTACKER, str(server.data_dir), str(b_run),
                        str(b_pid), str(store) if store.exists() else "-"])
    done = wait_state(a, attack["id"], timeout=30)
    lines = log_text(a, attack["id"])
    assert done["state"] == "completed", lines
    outcomes = dict(line.split(" ", 1) for line in lines if not line.startswith("uid "))
    for name in EXPECTED_DENIED:
        assert outcomes[name] in ("EACCES", "EPERM"), (name, outcomes)
    if store.exists():
        assert outcomes["read-store"] == "EACCES"
        for name in ("jobyard.db", "jobyard.db-wal", "jobyard.db-shm"):
            path = server.data_dir / name
            assert not path.exists() or stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert outcomes["own-work"] == "ok"  # its own working dir is its to write
    uid_line = next(line for line in lines if line.startswith("uid "))
    assert uid_line.split()[1] not in ("0", str(os.geteuid()))
    assert uid_line.endswith("nnp 1 groups []")  # no_new_privs, no supplementary groups

    # B's job went on untouched; the server kept serving both.
    release(server, b_job)
    b_done = wait_state(b, b_job["id"], timeout=30)
    assert b_done["state"] == "completed"
    assert log_text(b, b_job["id"])[-1] == "untouched"
    assert SECRET not in "".join(lines)
    assert httpx.get(f"{server.url}/healthz").json()["isolation"] == "org"


def test_orgs_run_as_different_uids_and_users_of_one_org_as_one(server, orgs):
    a, b = orgs
    whoami = ["python3", "-c", "import os; print(os.getuid(), os.getgid(), os.environ['HOME'])"]
    seen = []
    for client in (a, b):
        job = submit(client, whoami)
        assert wait_state(client, job["id"])["state"] == "completed"
        seen.append(log_text(client, job["id"])[0].split())
    (a_uid, a_gid, a_home), (b_uid, b_gid, b_home) = seen
    assert a_uid != b_uid and a_gid != b_gid and a_home != b_home
    home = Path(a_home)
    assert home.parent == server.data_dir / "homes"
    assert (home.stat().st_uid, stat.S_IMODE(home.stat().st_mode)) == (int(a_uid), 0o700)


def test_a_tenant_cannot_take_more_memory_or_processes_than_given(server, orgs):
    a, b = orgs
    b_job, _ = victim(b)
    hog = submit(a, ["python3", "-c", "b = b'x' * (400 * 2**20); print('survived')"],
                 resources={"memory_mb": 64})
    bomb = submit(a, ["python3", "-c", BOMB], time_limit_s=60)
    hogged = wait_state(a, hog["id"], timeout=30)
    assert hogged["state"] == "failed" and hogged["error"]["code"] == "OUT_OF_MEMORY"
    assert "survived" not in log_text(a, hog["id"])
    forked = wait_until(lambda: next((t for t in log_text(a, bomb["id"])
                                      if t.startswith("forked ")), None), timeout=30)
    assert int(forked.split()[1]) <= 31  # the pids limit counts the job's own process
    assert get(b, b_job["id"])["state"] == "running"
    a.post(f"/v1/jobs/{bomb['id']}/cancel")
    assert wait_state(a, bomb["id"], timeout=30)["state"] == "canceled"
    release(server, b_job)
    assert wait_state(b, b_job["id"], timeout=30)["state"] == "completed"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_with_an_identity_per_user_users_of_one_org_are_apart_too(tmp_path):
    whoami = ["python3", "-c", "import os; print(os.getuid(), os.getgid())"]
    with ServerProcess(tmp_path / "srv", env={"JOBYARD_JOB_IDENTITY": "user"}) as srv:
        assert httpx.get(f"{srv.url}/healthz").json()["isolation"] == "user"
        with srv.client() as admin:
            keys = [make_user(admin, name, "org-u")["key"] for name in ("ann", "al")]
        seen = []
        for key in keys:
            with srv.client(key) as user:
                job = submit(user, whoami)
                assert wait_state(user, job["id"])["state"] == "completed"
                seen.append(log_text(user, job["id"])[0].split())
    (ann_uid, ann_gid), (al_uid, al_gid) = seen
    assert ann_uid != al_uid and ann_gid == al_gid  # their org's volumes are shared by group
