"""Test helpers shipped in the package: a real server in a subprocess, and condition waits.

>>> with ServerProcess(tmp_path) as srv:
...     client = jobyard.Client(srv.url, srv.admin_key)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

T = TypeVar("T")

ADMIN_KEY = "jy_test_admin_key_0123456789abcdefghijklmnop"


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.01
) -> T:
    """:func:`wait_until` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_paused(pid: int) -> bool:
    """Whether ``pid`` is paused: stopped by a signal (state ``T``), or frozen in its cgroup
    (v1's freezer or v2's ``cgroup.freeze``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t"):
                return True
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return False
    for _, controllers, path in lines:
        if controllers == "freezer":
            state = Path(f"/sys/fs/cgroup/freezer{path}/freezer.state")
            if state.exists() and state.read_text().strip() == "FROZEN":
                return True
        elif controllers == "" and path != "/":
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                events = Path(f"{root}{path}/cgroup.events")
                if events.exists() and "frozen 1" in events.read_text():
                    return True
    return False


def passable(folder: Path) -> None:
    """Let every OS user pass through ``folder`` and the folders above it that are ours
    (``o+x``, not ``o+r``): as root, a server runs jobs as tenants' own uids, which must reach
    their folders in its data dir (test folders are made ``0700``)."""
    tmp = Path(tempfile.gettempdir())
    for path in (folder, *folder.parents):
        if tmp not in path.parents:
            return  # only what tests made in the temp dir
        st = path.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o001:
            path.chmod(st.st_mode | 0o011)


class ServerProcess:
    """``jobyard serve`` on a free loopback port, with its own data directory, run by
    ``python`` (this interpreter unless given: e.g. another user's, behind ``setpriv``)."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        admin_key: str = ADMIN_KEY,
        python: list[str] | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.extra_env = env or {}
        self.port = port or free_port()
        self.admin_key = admin_key
        self.python = python or [sys.executable]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        env.update(
            JOBYARD_BOOTSTRAP_ADMIN_KEY=self.admin_key,
            JOBYARD_VIRTUAL_GPUS="4",
            JOBYARD_KILL_GRACE_S="2",
            JOBYARD_TICK_INTERVAL_S="0.2",
            JOBYARD_SSE_HEARTBEAT_S="0.5",
        )
        if self.database_url:
            env["JOBYARD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        passable(self.data_dir.parent)
        self.log_path = self.data_dir / "server.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.python, "-m", "jobyard", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout=timeout, interval=0.05)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL: the crash the server must survive."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=10, **kw,
        )

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client_venv(requirements: Path, root: Path) -> Path:
    """A virtual environment with a vendor's published client (``requirements``, pinned) under
    ``root/.venv/compat/``, built once per machine and reused while the file is unchanged; a
    file lock keeps parallel test workers from building it twice. Returns its directory."""
    import fcntl
    import hashlib

    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    home = root / ".venv" / "compat" / f"{requirements.stem}-{digest}"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
            subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", "-r", str(requirements)], check=True)
            (home / ".ready").touch()
    return home


def marked_processes(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose environment carries ``JOBYARD_JOB_MARKER=marker``:
    what is left of a job attempt (the marker is ``<job id>.<attempt>``)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("JOBYARD_JOB_MARKER") == marker and proc.status() != "zombie":
                found.append(proc)
        except (psutil.Error, OSError):
            pass
    return found
