"""The report rules (jobyard.core.progress): pure functions of plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard.core.progress import EVENT_INTERVAL_S, apply_reports, as_change, from_tqdm, view

T0 = 1_000_000.0


class Job:
    """Just enough of a job to apply reports to, keeping what each write would store."""

    def __init__(self, state: str = "running", substate: str | None = "warming_up",
                 attempt: int = 1, started_at: float = T0) -> None:
        self.telemetry: dict[str, Any] = {}
        self.state, self.substate, self.attempt = state, substate, attempt
        self.started_at = started_at
        self.events: list[dict[str, Any]] = []

    def report(self, *reports: dict[str, Any], at: float, source: str = "api"):
        out = apply_reports(self.telemetry, list(reports), attempt=self.attempt, state=self.state,
                            substate=self.substate, started_at=self.started_at, now=at,
                            source=source)
        change = as_change(out)
        if change is not None:
            patch, fields, event = change
            self.telemetry = {**self.telemetry, **patch}
            self.substate = fields.get("substate", self.substate)
            if event:
                self.events.append(event[1])
        return out

    @property
    def view(self) -> dict[str, Any]:
        return view(self.telemetry, self.attempt)


def test_a_report_sets_progress_step_metadata_throughput_and_items():
    job = Job()
    job.report({"progress": 45, "step": "processing_images", "metadata": {"images": 450},
                "throughput": {"value": 43.1, "unit": "img/s"}, "items_done": 450,
                "items_total": 1000}, at=T0 + 10)
    assert job.view == {
        "progress": 45.0, "current_step": "processing_images", "metadata": {"images": 450},
        "throughput": {"value": 43.1, "unit": "img/s"}, "items": {"done": 450, "total": 1000},
        "estimated_completion": pytest.approx(T0 + 10 + 55 * 10 / 45, abs=0.01),
    }


def test_nothing_reported_shows_empty_fields():
    assert Job().view == {"progress": None, "current_step": None, "metadata": {},
                          "throughput": None, "items": None, "estimated_completion": None}


def test_reports_are_ordered_by_seq():
    job = Job()
    assert job.report({"seq": 10, "progress": 50}, at=T0 + 1).applied == 1
    out = job.report({"seq": 5, "progress": 20, "step": "old"}, {"seq": 10, "progress": 1},
                     at=T0 + 2)
    assert (out.applied, out.ignored, out.last_seq, out.changed) == (0, 2, 10, False)
    assert job.view["progress"] == 50.0 and job.view["current_step"] is None
    out = job.report({"seq": 11, "progress": 60}, {"seq": 9, "step": "x"}, {"step": "y"},
                     at=T0 + 3)
    assert (out.applied, out.ignored) == (2, 1)
    assert (job.view["progress"], job.view["current_step"]) == (60.0, "y")


def test_metadata_merges_and_null_deletes():
    job = Job()
    job.report({"metadata": {"a": 1, "b": 2}}, at=T0 + 1)
    job.report({"metadata": {"b": None, "c": {"nested": True}}}, at=T0 + 2)
    assert job.view["metadata"] == {"a": 1, "c": {"nested": True}}


def test_items_alone_give_progress_and_a_plain_number_is_a_throughput():
    job = Job()
    job.report({"items_total": 200}, at=T0 + 1)
    job.report({"items_done": 50, "throughput": 12.5}, at=T0 + 2)
    assert job.view["progress"] == 25.0
    assert job.view["items"] == {"done": 50, "total": 200}
    assert job.view["throughput"] == {"value": 12.5, "unit": None}


def test_warming_up_until_the_first_progress_or_output_then_processing():
    job = Job()
    job.report({"metadata": {"loading": "model"}, "step": "download"}, at=T0 + 1)
    assert job.substate == "warming_up"
    job.report({"progress": 1}, at=T0 + 2)
    assert job.substate == "processing"
    other = Job()
    other.report({"outputs": [{"name": "a.csv", "path": "/tmp/a.csv"}]}, at=T0 + 1)
    assert other.substate == "processing"


def test_reported_substates_and_the_services_own_are_left_alone():
    job = Job()
    job.report({"progress": 100, "substate": "finalizing"}, at=T0 + 1)
    assert job.substate == "finalizing"
    job.report({"progress": 100}, at=T0 + 2)
    assert job.substate == "finalizing"  # progress does not undo what the job said
    job.report({"substate": "uploading"}, at=T0 + 3)
    assert job.substate == "uploading"
    stopping = Job(substate="stopping")
    stopping.report({"progress": 5, "substate": "processing"}, at=T0 + 1)
    assert stopping.substate == "stopping" and stopping.view["progress"] == 5.0
    canceling = Job(state="canceling", substate=None)
    canceling.report({"progress": 5}, at=T0 + 1)
    assert canceling.substate is None


def test_eta_from_the_rate_since_the_first_progress_report():
    job = Job(started_at=T0)
    job.report({"progress": 10}, at=T0 + 100)  # a long setup: 100 s before any progress
    job.report({"progress": 30}, at=T0 + 110)  # 20 % in 10 s -> 35 s more for 70 %
    assert job.view["estimated_completion"] == pytest.approx(T0 + 145)
    job.report({"progress": 100}, at=T0 + 140)
    assert job.view["estimated_completion"] == T0 + 140


def test_a_single_report_estimates_from_the_attempt_start():
    job = Job(started_at=T0)
    job.report({"progress": 25}, at=T0 + 10)
    assert job.view["estimated_completion"] == pytest.approx(T0 + 40)


def test_progress_going_backwards_starts_a_new_rate():
    job = Job(started_at=T0)
    job.report({"progress": 0}, at=T0)
    job.report({"progress": 90}, at=T0 + 9)
    job.report({"progress": 10}, at=T0 + 10)  # e.g. the next epoch's bar
    job.report({"progress": 20}, at=T0 + 11)  # 10 % a second from here
    assert job.view["estimated_completion"] == pytest.approx(T0 + 19)


def test_events_are_throttled_but_telemetry_always_updates():
    job = Job()
    for i in range(100):  # 100 reports a second for a second
        job.report({"progress": i / 2}, at=T0 + i / 100)
    assert job.view["progress"] == 49.5
    assert len(job.events) <= 1 / EVENT_INTERVAL_S + 2
    assert job.events[0]["progress"] == 0.0 and job.events[0]["substate"] == "processing"
    n = len(job.events)
    job.report({"progress": 50, "step": "next"}, at=T0 + 1.001)  # a new step: at once
    job.report({"progress": 100}, at=T0 + 1.002)  # done: at once
    assert [e["current_step"] for e in job.events[n:]] == ["next", "next"]
    assert job.events[-1]["progress"] == 100.0
    assert job.events[-1]["estimated_completion"].endswith("Z")


def test_a_new_attempt_starts_afresh():
    job = Job()
    job.report({"seq": 100, "progress": 80, "metadata": {"a": 1}, "metrics": {"loss": 1.0},
                "outputs": [{"name": "x", "path": "/x"}]}, at=T0 + 1)
    job.attempt, job.substate = 2, "warming_up"
    assert job.view["progress"] is None  # the old attempt's progress is not shown
    job.report({"seq": 1, "step": "again"}, at=T0 + 2)
    assert job.view["current_step"] == "again" and job.view["metadata"] == {}
    assert job.telemetry["declared_outputs"] == [] and job.telemetry["user_metrics"] == {}


def test_outputs_are_declared_even_from_a_stale_report_and_metrics_keep_the_latest():
    job = Job()
    job.report({"seq": 5, "metrics": {"loss": 0.5}}, at=T0 + 1)
    out = job.report({"seq": 4, "outputs": [{"name": "p.csv", "path": "/d/p.csv",
                                              "records": 3}]}, at=T0 + 2)
    assert out.ignored == 1 and out.changed
    job.report({"seq": 6, "metrics": {"loss": 0.25, "acc": 0.9},
                "outputs": [{"name": "p.csv", "path": "/d/p2.csv"}]}, at=T0 + 3)
    assert job.telemetry["declared_outputs"] == [
        {"name": "p.csv", "path": "/d/p2.csv", "records": None, "attempt": 1}]
    assert job.telemetry["user_metrics"] == {"loss": 0.25, "acc": 0.9}


def test_tqdm_bars_drive_progress_until_the_job_reports_itself():
    job = Job()
    bar = {"percent": 45.0, "items_done": 450, "items_total": 1000,
           "throughput": {"value": 43.1, "unit": "it/s"}, "desc": "train"}
    job.report(from_tqdm(bar), at=T0 + 10, source="tqdm")
    assert (job.view["progress"], job.view["current_step"], job.substate) == (
        45.0, "train", "processing")
    job.report({"progress": 10, "step": "mine"}, at=T0 + 11)
    out = job.report(from_tqdm({**bar, "percent": 99.0}), at=T0 + 12, source="tqdm")
    assert out.ignored == 1 and job.view["progress"] == 10.0


def test_bad_values_are_ignored_not_stored():
    job = Job()
    job.report({"progress": float("nan"), "throughput": "fast", "items_done": -1,
                "metrics": {"x": float("inf"), "y": True}}, at=T0 + 1)
    assert job.view["progress"] is None and job.view["throughput"] is None
    assert job.view["items"] is None and job.telemetry["user_metrics"] == {}
