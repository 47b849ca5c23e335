"""The rules for progress reports: how a report (from the job, or read off a tqdm bar) changes
a job's telemetry. Pure functions of plain dicts; the API and the tqdm watcher both use them
inside one store write (:meth:`SqlStore.update_telemetry`), so a read-modify-write is atomic.

Telemetry keys written here: ``progress`` (the view below, plus bookkeeping), ``user_metrics``
(``{name: number}``) and ``declared_outputs`` (``[{name, path, records, attempt}]``, read by the
outputs collector). Everything is per attempt: the first report of a new attempt starts afresh.

- **Ordering**: a report's ``seq`` must exceed the last applied one, else it is ignored (its
  declared outputs still count: they are facts, not state). Reports without ``seq`` apply.
- **Substates**: ``warming_up`` turns ``processing`` once the attempt has shown progress or
  declared an output; a report may set ``processing``/``finalizing``/``uploading`` while the
  job runs. Service substates (``stopping``) are never overwritten.
- **ETA**: from the progress rate since the attempt's first progress report (so the setup
  phase before it does not count); a progress that goes backwards starts a new rate.
- **Events**: a ``progress`` event at most every :data:`EVENT_INTERVAL_S`, or at once when the
  step or substate changes, progress reaches 100 or an output is declared. Telemetry is always
  updated.
- Once the job reports progress itself, tqdm bars no longer drive its progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_INTERVAL_S = 0.25
MAX_METADATA_KEYS = 200
MAX_METRICS = 200
MAX_OUTPUTS = 1000
REPORTED_SUBSTATES = frozenset({"processing", "finalizing", "uploading"})
# Substates a job's own reports may move between (others belong to the service).
JOB_SUBSTATES = frozenset({None, "warming_up", *REPORTED_SUBSTATES})


@dataclass(slots=True)
class Outcome:
    """What applying reports changes: a telemetry patch, column values and maybe an event."""

    telemetry: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    applied: int = 0
    ignored: int = 0
    last_seq: int | None = None
    changed: bool = False  # False: nothing worth a write


def apply_reports(
    telemetry: dict[str, Any],
    reports: list[dict[str, Any]],
    *,
    attempt: int,
    state: str,
    substate: str | None,
    started_at: float | None,
    now: float,
    source: str = "api",
) -> Outcome:
    """Apply ``reports`` (in order) to a job's ``telemetry``; returns what to write."""
    prog = dict(telemetry.get("progress") or {})
    fresh = prog.get("attempt") != attempt
    if fresh:
        prog = {"attempt": attempt, "seq": None, "metadata": {}, "explicit": False}
    declared = [] if fresh else list(telemetry.get("declared_outputs") or [])
    outputs = list(declared)
    metrics = {} if fresh else dict(telemetry.get("user_metrics") or {})
    before = (prog.get("percent"), prog.get("step"))
    out, wanted = Outcome(), None
    for report in reports:
        for item in report.get("outputs") or ():  # declared even if the report is stale
            _declare(outputs, item, attempt)
        seq = report.get("seq")
        stale = seq is not None and prog["seq"] is not None and seq <= prog["seq"]
        if stale or (source != "api" and prog.get("explicit")):
            out.ignored += 1  # out of order; or a bar of a job that reports for itself
            continue
        if seq is not None:
            prog["seq"] = seq
        out.applied += 1
        prog.setdefault("first_report_at", now)
        if source == "api" and _has_progress(report):
            prog["explicit"] = True
        if report.get("substate") in REPORTED_SUBSTATES:
            wanted = report["substate"]
        _apply_one(prog, metrics, report, now, started_at)
    if out.applied:
        prog["updated_at"] = now
        prog["source"] = source
    out.last_seq = prog["seq"]
    out.telemetry = {"progress": prog}
    declaring = outputs != declared
    if declaring or fresh:
        out.telemetry["declared_outputs"] = outputs
    if metrics or fresh:
        out.telemetry["user_metrics"] = metrics
    new_sub = _substate(state, substate, wanted, prog, outputs)
    if new_sub != substate:
        out.fields["substate"] = new_sub
    out.changed = bool(out.applied or out.fields or declaring)
    after = (prog.get("percent"), prog.get("step"))
    if out.changed and _event_due(prog, before, after, bool(out.fields) or declaring, now):
        prog["event_at"] = now
        event = view({"progress": prog}, attempt)
        event["estimated_completion"] = _iso(event["estimated_completion"])
        out.event = {**event, "substate": new_sub}
    return out


def as_change(
    out: Outcome,
) -> tuple[dict[str, Any], dict[str, Any], tuple[str, dict[str, Any]] | None] | None:
    """``out`` as :meth:`SqlStore.update_telemetry` takes it (None: nothing to write)."""
    if not out.changed:
        return None
    return out.telemetry, out.fields, None if out.event is None else ("progress", out.event)


def view(telemetry: dict[str, Any], attempt: int) -> dict[str, Any]:
    """The progress fields the API shows (epoch seconds for ``estimated_completion``)."""
    prog = telemetry.get("progress") or {}
    if prog.get("attempt") != attempt:
        prog = {}
    return {
        "progress": prog.get("percent"),
        "current_step": prog.get("step"),
        "metadata": prog.get("metadata") or {},
        "throughput": prog.get("throughput"),
        "items": prog.get("items"),
        "estimated_completion": prog.get("estimated_completion"),
    }


def from_tqdm(bar: dict[str, Any]) -> dict[str, Any]:
    """A report made of a parsed tqdm bar (see :func:`jobyard.telemetry.tqdm.parse`)."""
    report: dict[str, Any] = {}
    for key in ("percent", "items_done", "items_total", "throughput"):
        if bar.get(key) is not None:
            report["progress" if key == "percent" else key] = bar[key]
    if isinstance(bar.get("desc"), str) and bar["desc"]:
        report["step"] = bar["desc"][:200]
    return report


def _has_progress(report: dict[str, Any]) -> bool:
    return any(report.get(k) is not None for k in ("progress", "items_done", "items_total"))


def _apply_one(prog: dict[str, Any], metrics: dict[str, Any], report: dict[str, Any],
               now: float, started_at: float | None) -> None:
    if report.get("step") is not None:
        prog["step"] = str(report["step"])
    if isinstance(report.get("metadata"), dict):
        meta = prog["metadata"] = dict(prog.get("metadata") or {})
        for key, value in report["metadata"].items():
            if value is None:
                meta.pop(key, None)
            elif key in meta or len(meta) < MAX_METADATA_KEYS:
                meta[key] = value
    throughput = _throughput(report.get("throughput"))
    if throughput is not None:
        prog["throughput"] = throughput
    for name, value in (report.get("metrics") or {}).items():
        if _finite(value) and (name in metrics or len(metrics) < MAX_METRICS):
            metrics[name] = value
    done, total = _count(report.get("items_done")), _count(report.get("items_total"))
    if done is not None or total is not None:
        items = dict(prog.get("items") or {"done": None, "total": None})
        items.update({k: v for k, v in (("done", done), ("total", total)) if v is not None})
        prog["items"] = items
    percent = report.get("progress")
    if percent is None and done is not None and prog["items"].get("total"):
        percent = 100.0 * prog["items"]["done"] / prog["items"]["total"]
    if percent is not None and _finite(percent):
        _progress(prog, min(100.0, max(0.0, float(percent))), now, started_at)


def _progress(prog: dict[str, Any], percent: float, now: float, started_at: float | None) -> None:
    """Record ``percent`` and re-estimate the completion time from the progress rate."""
    anchor = prog.get("anchor")
    if anchor is None or percent < (prog.get("percent") or 0.0):
        anchor = prog["anchor"] = [now, percent]  # first progress, or a new phase
    prog["percent"] = round(percent, 3)
    t0, p0 = anchor
    if percent >= 100.0:
        eta: float | None = now
    elif percent > p0 and now > t0:
        eta = now + (100.0 - percent) * (now - t0) / (percent - p0)
    elif percent > 0 and started_at is not None and now > started_at:
        eta = now + (100.0 - percent) * (now - started_at) / percent  # one point: from the start
    else:
        eta = None
    prog["estimated_completion"] = None if eta is None else round(eta, 3)


def _substate(state: str, substate: str | None, wanted: str | None, prog: dict[str, Any],
              outputs: list[dict[str, Any]]) -> str | None:
    if state != "running" or substate not in JOB_SUBSTATES:
        return substate
    if wanted:
        return wanted
    if substate in (None, "warming_up") and (prog.get("percent") is not None
                                             or prog.get("items") or outputs):
        return "processing"
    return substate


def _event_due(prog: dict[str, Any], before: tuple[Any, ...], after: tuple[Any, ...],
               news: bool, now: float) -> bool:
    if news or before[1] != after[1]:
        return True  # the substate or the step changed, or an output was declared
    if before[0] != after[0] and (before[0] is None or after[0] == 100.0):
        return True  # first progress, or done
    last = prog.get("event_at")
    return last is None or now - last >= EVENT_INTERVAL_S


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _declare(outputs: list[dict[str, Any]], item: dict[str, Any], attempt: int) -> None:
    name = str(item.get("name") or "")
    if not name:
        return
    entry = {"name": name, "path": item.get("path"), "records": item.get("records"),
             "attempt": attempt}
    for i, existing in enumerate(outputs):
        if existing.get("name") == name:
            outputs[i] = entry
            return
    if len(outputs) < MAX_OUTPUTS:
        outputs.append(entry)


def _throughput(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and _finite(value.get("value")):
        unit = value.get("unit")
        return {"value": float(value["value"]), "unit": str(unit)[:32] if unit else None}
    if _finite(value):
        return {"value": float(value), "unit": None}
    return None


def _count(value: Any) -> float | int | None:
    return value if _finite(value) and value >= 0 else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
