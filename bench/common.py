"""What the benchmark scripts share: a server in a temporary directory, figures, reporting.

Each ``bench_*.py`` imports this module (it sits next to them, so ``python bench/bench_x.py``
finds it). Servers run on the shipped defaults (``jobyard.config.Config``) rather than the test
values ``ServerProcess`` sets, except where a script says otherwise in its output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from jobyard.config import Config
from jobyard.core.states import JobState
from jobyard.testing import ServerProcess

TERMINAL = frozenset(str(s) for s in JobState if s.is_terminal)


# --- command line ------------------------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... to run on PostgreSQL (a fresh database is created in that server "
        "and dropped afterwards); default: SQLite in a temporary data directory",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    return p


def run(main: Callable[[], None], figure: str) -> None:
    """Run a script's ``main``; if it fails, say ``figure`` was not measured and why (with the
    traceback on stderr) and still exit 0: a benchmark reports, it does not fail CI."""
    try:
        main()
    except KeyboardInterrupt:
        print(f"{figure}: not measured (interrupted)", flush=True)
    except Exception as exc:
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{figure}: not measured ({type(exc).__name__}: {first})", flush=True)
    sys.exit(0)


# --- figures -----------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values) if values else math.nan,
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


def report(label: str, value: float, unit: str, target: float, op: str = "<=") -> bool:
    """Print ``label: value unit (target op T unit, ratio R: met|MISSED)``; return met.

    The ratio is always measured / target: at most 1 is good for a ``<=`` target, at least 1
    for a ``>=`` target.
    """
    ratio = value / target if target else math.nan
    met = value <= target if op == "<=" else value >= target
    verdict = "met" if met else "MISSED"
    print(
        f"{label}: {_fmt(value)} {unit} (target {op} {_fmt(target)} {unit}, "
        f"ratio {ratio:.2f}: {verdict})",
        flush=True,
    )
    return met


def info(label: str, value: float | str, unit: str = "") -> None:
    """A figure without a target (context for the reader)."""
    shown = _fmt(value) if isinstance(value, float | int) else value
    print(f"  {label}: {shown}{' ' + unit if unit else ''}", flush=True)


def _fmt(x: float) -> str:
    if isinstance(x, int) or x.is_integer():
        return f"{int(x)}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


# --- a server ----------------------------------------------------------------------------------
def shipped_defaults() -> dict[str, str]:
    """Env that undoes the test values ServerProcess sets (tick 0.2 s, kill grace 2 s)."""
    fields = Config.model_fields
    return {
        "JOBYARD_TICK_INTERVAL_S": str(fields["tick_interval_s"].default),
        "JOBYARD_KILL_GRACE_S": str(fields["kill_grace_s"].default),
    }


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str | None]:
    """``None`` for SQLite; for a PostgreSQL URL, a fresh database that is dropped afterwards.

    The server bootstraps its admin key only into an empty store, so each run needs its own.
    """
    if not url:
        yield None
        return
    import sqlalchemy as sa

    from jobyard.store.engine import normalize_url

    base = sa.engine.make_url(normalize_url(url))
    name = f"jobyard_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            try:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except sa.exc.DBAPIError:  # PostgreSQL < 13
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@contextlib.contextmanager
def temp_dir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="jobyard-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", flush=True)
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


# Both ways a server may run jobs, measured side by side: as the server's user without cgroups,
# and (the default as root) each org as its own uid in a cgroup per attempt.
ISOLATION_MODES = (
    ("not isolated", {"JOBYARD_JOB_IDENTITY": "none", "JOBYARD_CGROUPS": "off"}),
    ("isolated", {}),
)


def print_isolation(label: str, srv: ServerProcess) -> None:
    """Which of :data:`ISOLATION_MODES` the server runs in, as its /healthz says."""
    confined = httpx.get(f"{srv.url}/healthz", timeout=10).json()
    print(f"\n{label}: isolation={confined['isolation']} cgroups={confined['cgroups']}",
          flush=True)


@contextlib.contextmanager
def workspace(args: argparse.Namespace) -> Iterator[tuple[Path, str | None]]:
    """A temporary data directory and database URL (None: SQLite in the data directory)."""
    with temp_dir(args.keep) as data_dir, database(args.database_url) as url:
        yield data_dir, url


@contextlib.contextmanager
def server_on(
    data_dir: Path, database_url: str | None, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A started server on ``data_dir``/``database_url``; stopped on exit, and any job process
    it left behind killed."""
    srv = ServerProcess(
        data_dir, database_url=database_url, env={**shipped_defaults(), **(env or {})}
    )
    started = time.time()
    try:
        try:
            srv.start()
        except TimeoutError:
            print(f"server did not answer; its log:\n{_log_tail(srv)}", flush=True)
            raise
        yield srv
    finally:
        srv.stop()
        kill_leftover_jobs(srv, started)


@contextlib.contextmanager
def server(
    args: argparse.Namespace, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A started server on a fresh workspace; everything is removed on exit."""
    with workspace(args) as (data_dir, url), server_on(data_dir, url, env) as srv:
        yield srv


def _log_tail(srv: ServerProcess) -> str:
    try:
        return srv.log()
    except (OSError, AttributeError):
        return "(no log)"


def own_processes_since(since: float) -> Iterator[psutil.Process]:
    """Processes of this user created at or after ``since`` (epoch seconds)."""
    uid = os.getuid()
    for p in psutil.process_iter(["uids", "create_time"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid and p.info["create_time"] >= since - 1:
                yield p
        except (psutil.Error, TypeError):
            continue


def processes_with_env(name: str, value: str, since: float) -> list[int]:
    """Pids of this user's processes (created since ``since``) whose env has ``name=value``."""
    pids = []
    for p in own_processes_since(since):
        try:
            if p.environ().get(name) == value:
                pids.append(p.pid)
        except psutil.Error:
            continue
    return pids


def kill_leftover_jobs(srv: ServerProcess, since: float) -> None:
    """SIGKILL job processes of this server still alive after it stopped (they carry its URL)."""
    for pid in processes_with_env("JOBYARD_URL", srv.url, since):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# --- API helpers -------------------------------------------------------------------------------
def submit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/jobs", json=body)
    if r.status_code != 201:
        raise RuntimeError(f"submit answered {r.status_code}: {r.text}")
    return r.json()


def wait_state(
    client: httpx.Client,
    job_id: str,
    states: frozenset[str] | set[str],
    timeout: float = 30.0,
    interval: float = 0.01,
) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id} still {job['state']} after {timeout}s")
        time.sleep(interval)


def parse_job_counts(metrics_text: str) -> dict[str, int]:
    """``jobyard_jobs{state=...}`` from the text of /metrics."""
    counts: dict[str, int] = {}
    for line in metrics_text.splitlines():
        if line.startswith('jobyard_jobs{state="'):
            labels, _, value = line.rpartition(" ")
            state = labels.split('"')[1]
            counts[state] = int(float(value))
    return counts


def epoch(iso: str) -> float:
    """An API time (``2026-11-23T14:40:52.123456Z``) as epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class CpuMeter:
    """CPU seconds spent between :meth:`start` and :meth:`stop`, by whom.

    ``server``: the server process; ``helpers``: its live child processes (the launcher) and the
    children they reaped (supervisors, and the jobs each supervisor reaped); ``client``: this
    benchmark process and its reaped children; ``machine``: every CPU of the machine (busy
    time), so ``machine - server - helpers - client`` is everyone else (a database server, other
    users of the machine, processes not reaped yet).
    """

    def __init__(self, server_pid: int):
        self.server = psutil.Process(server_pid)

    @staticmethod
    def _busy(t: Any) -> float:
        return t.user + t.system

    def _snap(self) -> dict[str, float]:
        helpers = 0.0
        for child in self.server.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                helpers += self._busy(t) + t.children_user + t.children_system
        machine = psutil.cpu_times()
        me = psutil.Process().cpu_times()
        return {
            "server": self._busy(self.server.cpu_times()),
            "helpers": helpers,
            "client": self._busy(me) + me.children_user + me.children_system,
            "machine": machine.user + machine.system + getattr(machine, "nice", 0.0)
            + getattr(machine, "irq", 0.0) + getattr(machine, "softirq", 0.0),
            "wall": time.monotonic(),
        }

    def start(self) -> CpuMeter:
        self._t0 = self._snap()
        return self

    def stop(self) -> dict[str, float]:
        t1 = self._snap()
        return {k: t1[k] - self._t0[k] for k in t1}

    @staticmethod
    def print(used: dict[str, float]) -> None:
        wall = used["wall"]
        other = used["machine"] - used["server"] - used["helpers"] - used["client"]
        print(f"CPU seconds over {wall:.2f} s wall ({os.cpu_count()} CPUs = "
              f"{wall * (os.cpu_count() or 1):.2f} CPU-s available):", flush=True)
        for key, what in (
            ("server", "server process"),
            ("helpers", "launcher + supervisors + jobs (reaped)"),
            ("client", "benchmark client (and its reaped children, e.g. wrk)"),
        ):
            info(what, f"{used[key]:.2f} CPU-s")
        info("everything else on the machine (database server, other users)",
             f"{other:.2f} CPU-s")


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client for load generation on loopback.

    httpx costs ~2-3 ms of CPU per request on this machine, as much as the server spends on
    a whole job; a load generator should not compete that hard for the same two cores.
    """

    def __init__(self, url: str, key: str):
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port
        self.key = key

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    @staticmethod
    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       request: bytes) -> tuple[int, bytes]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await reader.readexactly(length)


def wait_log_line(client: httpx.Client, job_id: str, prefix: str, timeout: float = 30.0) -> str:
    """The first log line of a job that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in client.get(f"/v1/jobs/{job_id}/logs").json()["lines"]:
            if line["text"].startswith(prefix):
                return line["text"].strip()
        time.sleep(0.05)
    raise TimeoutError(f"{job_id} printed no line starting with {prefix!r}")
