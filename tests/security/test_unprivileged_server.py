"""A server that is not root: each job in its own namespaces plays the hostile tenant.

The server runs as ``nobody`` with the machine's ``/usr/bin/python3`` (this interpreter lies
under ``/root``, closed to other users), its SQLite store and config file outside its data dir.
Its jobs run as ``nobody`` too, so file modes cannot stop them: the namespaces must. A job of
org A tries to reach the store, the config, org B's running job and the server; each attempt
must fail, B's job must complete untouched, and cancel and pause must still reach every
process of a job. Skipped where the server cannot be run so (the reason says why).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

import jobyard
from jobyard.testing import ServerProcess, is_paused, wait_until
from tests.api.helpers import log_text, submit, wait_state
from tests.security.test_hostile_tenant import release, victim

SYSTEM_PYTHON = "/usr/bin/python3"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start the server as another user"
    if not os.path.exists(SYSTEM_PYTHON) or shutil.which("setpriv") is None:
        return f"needs {SYSTEM_PYTHON} and setpriv"
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version != str(sys.version_info[:2]):
        return f"{SYSTEM_PYTHON} is {version}, not this interpreter's {sys.version_info[:2]}"
    tried = subprocess.run([*AS_NOBODY, SYSTEM_PYTHON, "-m", "jobyard.executors.sandbox"],
                           env=_env(), capture_output=True, text=True, cwd="/")
    if tried.returncode:
        return tried.stderr.strip() or f"the namespaces' probe exited with {tried.returncode}"
    return None


def _env() -> dict[str, str]:
    """What lets the system interpreter import this checkout and its dependencies."""
    paths = sysconfig.get_paths()
    src = str(Path(jobyard.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, paths["purelib"], paths["platlib"]])}


WHY_NOT = _why_not()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))

# A's job: every attack, each printing "<name> <outcome>"; "ok" (or "ok <n>" bytes read)
# where it went through.
ATTACKER = r"""
import ctypes, errno, os, signal, sys
data, b_run, b_pid, server_pid, store, config = sys.argv[1:7]
libc = ctypes.CDLL(None, use_errno=True)

def attempt(name, fn):
    try:
        got = fn()
        print(name, "ok" if got is None else f"ok {got}", flush=True)
    except OSError as exc:
        print(name, errno.errorcode.get(exc.errno, exc.errno), flush=True)

def read(path):
    return lambda: len(open(path, "rb").read())

def call(result, what):
    if result != 0:
        raise OSError(ctypes.get_errno(), what)

def ptrace():
    call(libc.ptrace(16, int(b_pid), 0, 0), "ptrace")  # PTRACE_ATTACH

def uncover_in_own_namespace():
    # Its own user and mount namespaces give it every capability there, but the copies of
    # the covers are locked: lifting one fails.
    pid = os.fork()
    if pid == 0:
        uid, gid = os.getuid(), os.getgid()
        code = 0
        try:
            call(libc.unshare(0x10000000 | 0x00020000), "unshare")
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                open(f"/proc/self/{name}", "w").write(text)
            call(libc.umount2(data.encode(), 2), "umount")  # MNT_DETACH
        except OSError as exc:
            code = exc.errno
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        raise OSError(code, "uncover")

attempt("list-data-dir", lambda: ",".join(sorted(os.listdir(data))))
attempt("read-store", read(store))
attempt("read-store-wal", read(store + "-wal"))
attempt("read-config", read(config))
attempt("read-b-log", read(os.path.join(b_run, "log")))
attempt("read-b-output", read(os.path.join(b_run, "outputs", "b-out.txt")))
attempt("read-b-work", read(os.path.join(b_run, "work", "b-work.txt")))
attempt("read-b-environ", read(f"/proc/{b_pid}/environ"))
attempt("read-server-root", lambda: os.listdir(f"/proc/{server_pid}/root"))
attempt("kill-b", lambda: os.kill(int(b_pid), signal.SIGKILL))
attempt("kill-server", lambda: os.kill(int(server_pid), signal.SIGKILL))
attempt("ptrace-b", ptrace)
attempt("write-data-dir", lambda: open(os.path.join(data, "planted"), "w").write("x"))
attempt("uncover", lambda: call(libc.umount2(data.encode(), 2), "umount"))
attempt("uncover-in-own-namespace", uncover_in_own_namespace)
attempt("own-work", lambda: open("mine.txt", "w").write("x") and None)
attempt("own-output", lambda: open(os.path.join(os.environ["JOBYARD_OUTPUT_DIR"], "a.txt"),
                                   "w").write("a") and None)
attempt("processes", lambda: len([p for p in os.listdir("/proc") if p.isdigit()]))
attempt("client-dir", lambda: len(os.listdir(os.path.join(data, "client"))))
import jobyard.job
print("client", jobyard.job.__file__, flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("unprivileged")
    for name in ("data", "store"):
        (root / name).mkdir()
        shutil.chown(root / name, "nobody", "nogroup")
    config = root / "jobyard.toml"
    config.write_text('log_cap_bytes = 10485760\n')
    config.chmod(0o644)  # the server's user must read it: so would its jobs, uncovered
    env = {k: v for k, v in _env().items() if k == "PYTHONPATH"}
    env.update(HOME=str(root), JOBYARD_CONFIG=str(config))
    srv = ServerProcess(root / "data", database_url=f"sqlite:///{root / 'store' / 'jobyard.db'}",
                        env=env, python=[*AS_NOBODY, SYSTEM_PYTHON])
    srv.start()
    yield srv
    srv.stop()
    for proc in processes_with("HOME", str(root)):  # what a failed test left running
        proc.kill()


def processes_with(name: str, value: str) -> list[psutil.Process]:
    """The processes whose environment has ``name=value`` (as root, every one is readable)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(name) == value:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def job_processes(marker: str) -> list[psutil.Process]:
    """The processes of the attempt ``marker`` names."""
    return processes_with("JOBYARD_JOB_MARKER", marker)


def test_a_job_sees_neither_the_server_nor_another_job(server, orgs):
    a, b = orgs
    health = httpx.get(f"{server.url}/healthz").json()
    assert (health["isolation"], health["namespaces"], health["cgroups"]) == \
        ("none", "on", "none"), health  # no cgroup here is nobody's to write
    b_job, b_pid = victim(b)
    assert b_pid == 2  # as its own namespace numbers it (after its pid 1): name it as we do
    b_pid = next(p.pid for p in job_processes(f"{b_job['id']}.1") if "-c" in p.cmdline())
    b_run = server.data_dir / "runs" / f"{b_job['id']}.1"
    store = server.data_dir.parent / "store" / "jobyard.db"
    assert store.exists() and b_run.exists()
    attack = submit(a, ["python3", "-c", ATTACKER, str(server.data_dir), str(b_run), str(b_pid),
                        str(server.proc.pid), str(store),
                        str(server.data_dir.parent / "jobyard.toml")])
    done = wait_state(a, attack["id"], timeout=30)
    lines = log_text(a, attack["id"])
    assert done["state"] == "completed", lines
    outcomes = dict(line.split(" ", 1) for line in lines)

    assert set(outcomes["list-data-dir"].removeprefix("ok ").split(",")) <= {"client", "runs"}
    for name in ("read-store", "read-store-wal", "read-config"):  # covered by empty files
        assert outcomes[name] == "ok 0", (name, outcomes)
    for name in ("read-b-log", "read-b-output", "read-b-work", "read-b-environ",
                 "read-server-root"):
        assert outcomes[name] == "ENOENT", (name, outcomes)
    for name in ("kill-b", "kill-server", "ptrace-b"):
        assert outcomes[name] == "ESRCH", (name, outcomes)
    assert outcomes["write-data-dir"] == "EROFS"
    assert outcomes["uncover"] == "EPERM"
    assert outcomes["uncover-in-own-namespace"] == "EINVAL"
    assert outcomes["own-work"] == outcomes["own-output"] == "ok"
    assert int(outcomes["processes"].removeprefix("ok ")) <= 3  # its pid 1, itself, maybe ps
    assert outcomes["client-dir"] == "ok 1"  # bound back: a job could take the client from it
    assert outcomes["client"].endswith("/jobyard/job.py")  # the reporting client is at hand
    r = a.get(f"/v1/jobs/{attack['id']}/outputs")
    assert [o["name"] for o in r.json()["items"]] == ["a.txt"], r.text

    release(server, b_job)
    assert wait_state(b, b_job["id"], timeout=30)["state"] == "completed"
    assert log_text(b, b_job["id"])[-1] == "untouched"
    assert server.proc.poll() is None


def test_cancel_and_pause_reach_every_process_of_a_job(server, orgs):
    a, _ = orgs
    # An escapee in its own session, and a main process that prints until stopped.
    job = submit(a, ["sh", "-c", "setsid sleep 300 & while :; do echo tick; sleep 0.05; done"],
                 time_limit_s=120)
    wait_state(a, job["id"], "running", timeout=20)
    marker = f"{job['id']}.1"
    procs = wait_until(lambda: (p := job_processes(marker)) and len(p) >= 3 and p, timeout=10)

    assert a.post(f"/v1/jobs/{job['id']}/pause").status_code == 202
    wait_until(lambda: all(is_paused(p.pid) for p in job_processes(marker)), timeout=10)
    assert a.post(f"/v1/jobs/{job['id']}/resume").status_code == 202
    wait_until(lambda: not any(is_paused(p.pid) for p in job_processes(marker)), timeout=10)

    assert a.post(f"/v1/jobs/{job['id']}/cancel").status_code in (200, 202)
    assert wait_state(a, job["id"], timeout=30)["state"] == "canceled"
    assert not job_processes(marker)
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
