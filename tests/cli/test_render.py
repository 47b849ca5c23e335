"""How the CLI shows a job's progress, rate, ETA, cost and peaks (no server needed)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from jobyard.cli import render
from jobyard.cli.jobs import ProgressBar
from jobyard.sdk.jobs import Job


def job(**fields) -> Job:
    return Job.from_dict({"id": "job_x", "state": "running", **fields})


def test_progress_rate_items_eta_cost_and_size_read_as_people_write_them():
    assert render.bar(45, 10) == "[green]████[/][dim]░░░░░░[/] 45%"  # 4.5 rounds to 4
    assert render.bar(None) == "-" and render.percent(99.6) == "100%"
    assert render.rate(job(throughput={"value": 43.1, "unit": "img/s"})) == "43.1 img/s"
    assert render.rate(job(throughput={"value": 2, "unit": None})) == "2 /s"
    assert render.items(job(items={"done": 450, "total": None})) == "450/?"
    assert render.items(job()) is None
    soon = (datetime.now(UTC) + timedelta(seconds=200)).isoformat()
    assert render.eta(job(estimated_completion=soon)).startswith("in 3m")
    assert render.eta(job(estimated_completion=soon, state="completed")) is None
    assert render.money({"currency": "USD", "accrued": 0.0292, "total": None}) == "0.0292 USD"
    assert render.money({"currency": "EUR", "accrued": 1.0, "total": 1.5}) == "1.5000 EUR"
    assert [render.size(n) for n in (512, 2_500, 734_003_200, 3e9)] == \
        ["512 B", "2.5 kB", "734.0 MB", "3.0 GB"]


def test_peaks_and_the_summary_come_from_metrics_or_the_efficiency_report():
    live = {"peaks": {"cpu_percent": 101.2, "rss_bytes": 734_003_200,
                      "gpus": [{"index": 0, "utilization": 92}]}}
    assert render.peaks(job(), live) == "CPU 101%, memory 734.0 MB, GPU 0 92%"
    ended = job(state="completed", started_at="2026-12-05T10:00:00+00:00",
                finished_at="2026-12-05T10:01:30+00:00",
                cost={"currency": "USD", "accrued": 0.5, "total": 0.5},
                efficiency={"cpu": {"peak_percent": 50.0},
                            "memory": {"peak_rss_bytes": 2_000_000_000}})
    assert render.peaks(ended) == "CPU 50%, memory 2.0 GB"
    assert render.summary(ended) == \
        "job job_x completed in 1m30s · cost 0.5000 USD · peak memory 2.0 GB"
    assert render.summary(job(state="canceled")) == "job job_x canceled in -"


def test_the_live_bar_shows_step_percent_rate_and_eta():
    out = io.StringIO()
    bar = ProgressBar(Console(file=out, force_terminal=True, width=120))
    bar.show(job())  # no progress reported: no bar
    assert bar.task is None
    soon = (datetime.now(UTC) + timedelta(seconds=90)).isoformat()
    with bar.progress:
        bar.show(job(progress=45, current_step="training", estimated_completion=soon,
                     throughput={"value": 12.5, "unit": "img/s"}))
        bar.show(job(progress=60, current_step="eval", estimated_completion=soon,
                     items={"done": 60, "total": 100}))
        bar.progress.refresh()
    task = bar.progress.tasks[0]
    assert (task.completed, task.description, task.fields["rate"]) == (60, "eval", "60/100")
    assert task.fields["eta"].startswith("ETA in 1m")
    assert "eval" in out.getvalue() and "60%" in out.getvalue()
