"""Helpers for the executor tests: waiting on conditions, reading run directories."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from jobyard.executors.base import ExitStatus, LaunchSpec
from jobyard.executors.local import LocalExecutor


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def kill_marked(markers: set[str]) -> list[int]:
    """SIGKILL any process carrying one of ``markers``; returns their pids."""
    found = []
    for pid in psutil.pids():
        try:
            proc = psutil.Process(pid)  # not process_iter(): its cache goes stale on pid reuse
            if proc.environ().get("JOBYARD_JOB_MARKER") in markers:
                proc.kill()
                found.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(found, timeout=5)
    return [p.pid for p in found]


def log_lines(run_dir: str) -> list[tuple[float, str, str]]:
    path = Path(run_dir, "log")  # created on the job's first output
    lines = path.read_text().splitlines() if path.exists() else []
    return [(float(ts), stream, text) for ts, stream, text in (x.split("\t", 2) for x in lines)]


def texts(run_dir: str, stream: str = "o") -> list[str]:
    return [text for _, s, text in log_lines(run_dir) if s == stream]


def gone(procs: list[psutil.Process]) -> bool:
    """True if none of ``procs`` is still alive (a recycled pid does not count)."""
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


async def run(executor: LocalExecutor, spec: LaunchSpec) -> ExitStatus:
    return await executor.wait(await executor.launch(spec))


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]
