"""Cold-start phases and the efficiency report of an attempt.

Phases of an attempt, from its state events:

* ``queue_wait_s``: from when it could run (queued, or its retry time) to its admission
  (``launching``);
* ``launch_s``: from admission until its process runs (``running``);
* ``setup_s``: from ``running`` until the job first shows life: its first report
  (``telemetry.progress.first_report_at``), its first line of output, or its first file in
  the output directory, whichever came first. ``null`` while (or if) none came.

``duration_s`` is launch plus setup (the start-up itself; queueing is not part of it).
``cache_hit`` is given only where an executor knows it (``Handle.extra["cache_hit"]``); the
local executor starts a fresh process every time, so there it is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from jobyard.telemetry.metrics import AttemptStats

SYSTEM_STREAM = "x"  # log lines Jobyard itself wrote (see store.logfiles)


def attempt_marks(events: Iterable[tuple[float, dict[str, Any]]]) -> dict[str, float]:
    """``eligible``, ``launching`` and ``running`` times of the latest attempt, from its
    ``state`` events (``(ts, data)`` in order)."""
    ordered = list(events)
    launch_at = max((i for i, (_, d) in enumerate(ordered) if d.get("to") == "launching"),
                    default=None)
    if launch_at is None:
        return {}
    marks = {"launching": ordered[launch_at][0]}
    for ts, data in reversed(ordered[:launch_at]):
        if data.get("to") == "queued":
            marks["eligible"] = max(ts, float(data.get("next_retry_at") or 0.0))
            break
    for ts, data in ordered[launch_at + 1:]:
        if data.get("to") == "running":
            marks["running"] = ts
            break
    return marks


def marks_from_job(job: Any) -> dict[str, float] | None:
    """The same marks, from what the daemon wrote on the job itself (no event read): the
    admission time and what the attempt waited for are kept in ``assigned``."""
    assigned = job.assigned or {}
    if "admitted_at" not in assigned:
        return None
    marks = {"launching": float(assigned["admitted_at"]),
             "eligible": float(assigned.get("eligible_at") or job.created_at)}
    if job.started_at is not None:
        marks["running"] = float(job.started_at)
    return marks


def first_output(run_dir: str | Path) -> tuple[float, str] | None:
    """When the attempt first wrote something: its first log line or output file."""
    found: list[tuple[float, str]] = []
    if not run_dir:
        return None
    try:
        with open(Path(run_dir) / "log", encoding="utf-8", errors="replace") as f:
            for raw in f:
                ts, _, rest = raw.partition("\t")
                if raw.endswith("\n") and not rest.startswith(SYSTEM_STREAM + "\t"):
                    found.append((float(ts), "log"))
                    break
    except (OSError, ValueError):
        pass
    try:
        with os.scandir(Path(run_dir) / "outputs") as entries:
            times = [e.stat(follow_symlinks=False).st_mtime for e in entries]
        if times:
            found.append((min(times), "output"))
    except OSError:
        pass
    return min(found) if found else None


def epoch(value: Any) -> float | None:
    """A timestamp as epoch seconds, from a number or an ISO 8601 string."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def setup_end(telemetry: dict[str, Any], attempt: int, output: tuple[float, str] | None
              ) -> tuple[float, str] | None:
    """The first sign of life: a report (``telemetry.progress.first_report_at`` of this
    attempt) or an output, whichever came first."""
    found = [output] if output else []
    progress = telemetry.get("progress") or {}
    first = progress.get("first_report_at") if progress.get("attempt") == attempt else None
    reported = epoch(first if first is not None else telemetry.get("first_report_at"))
    if reported is not None:
        found.append((reported, "report"))
    return min(found) if found else None


def cold_start(marks: dict[str, float], setup: tuple[float, str] | None,
               cache_hit: bool | None = None) -> dict[str, Any] | None:
    """The cold-start record of an attempt (None before it was admitted)."""
    if "launching" not in marks:
        return None
    launching, running = marks["launching"], marks.get("running")
    phases: dict[str, float | None] = {
        "queue_wait_s": _span(marks.get("eligible"), launching),
        "launch_s": _span(launching, running),
        "setup_s": _span(running, setup[0]) if running is not None and setup else None,
    }
    record: dict[str, Any] = {
        "occurred": running is not None,
        "duration_s": round(sum(v for k, v in phases.items() if k != "queue_wait_s" and v), 3),
        "phases": phases,
        "setup_ended_by": setup[1] if setup and phases["setup_s"] is not None else None,
    }
    if cache_hit is not None:
        record["cache_hit"] = cache_hit
    return record


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def efficiency(
    stats: AttemptStats,
    gpus: list[int],
    cpus: float,
    run_time_s: float,
    cost: dict[str, Any],
    cold: dict[str, Any] | None,
    idle_share: float,
) -> dict[str, Any]:
    """The report written when a job ends. ``gpus`` (per GPU averages, peaks and an ``idle``
    flag: idle in more than ``idle_share`` of its samples) and ``idle_gpus`` are present only
    when NVML measured them."""
    hours = run_time_s / 3600.0
    report: dict[str, Any] = {
        "attempt": stats.attempt,
        "run_time_s": round(run_time_s, 3),
        "gpu_hours": round(len(gpus) * hours, 9),
        "cpu_hours": round(cpus * hours, 9),
        "samples": stats.samples,
        "cpu": {"avg_percent": _r(stats.cpu.avg), "peak_percent": _r(stats.cpu.peak)},
        "memory": {"avg_rss_bytes": _i(stats.rss.avg), "peak_rss_bytes": _i(stats.rss.peak)},
        "cold_start": cold,
        "cost": cost,
    }
    measured = stats.gpu_summary()
    if measured:
        for gpu in measured:
            if "idle_fraction" in gpu:
                gpu["idle"] = gpu["idle_fraction"] > idle_share
        report["gpus"] = measured
        report["idle_gpus"] = [g["index"] for g in measured if g.get("idle")]
    return report


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _i(value: float | None) -> int | None:
    return None if value is None else int(value)
