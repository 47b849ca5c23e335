"""A job as TensorOne's job-status page shows it, filled from what the job really did.

A field with nothing real behind it is left out (never ``null``, never made up): no
``estimatedCompletion`` before the job reported progress, no GPU utilization without NVML, no
``output`` when the job wrote none. Which fields come from where:

========================  =====================================================================
``status``                the one state table (``dialects/states.py``), TensorOne's column
``progress``              a whole percent, always: what the job reported (0-100); 0 before it
                          reported; 100 once completed
``currentStep``,          the job's reports (``jobyard.job.progress``, ``jobyard report``, tqdm);
                          a running job's substate until it names a step
``metadata``,
``throughput``,
``estimatedCompletion``
``endpointId``            the endpoint it was run of (``POST /v2/endpoints/{id}/run``)
``priority``              the core's integer priority as a name (``shapes.PRIORITIES``)
``completedAt`` /         when it ended (completed / failed or timeout / cancelled)
``failedAt`` /
``cancelledAt``
``executionTime``         seconds from its start to its end
``output``                ``result``: the JSON the job wrote to ``output.json``; ``files``,
                          ``outputUrl``/``size``/``format``: the files it left as outputs
``finalMetrics``          the metrics the job reported, its total cost
``error``                 the core's error (``code``, ``message``, ``details``), with the step
``partialResults``        what a job that did not complete left: items done, partial outputs
``retryable``,            its retry policy and attempt; ``nextRetryAt`` while it waits for one
``retryCount``,
``nextRetryAt``
``tags``                  the core's tags, ``"k:v"`` as ``{"k": "v"}``
``resources``             ``include=resources``: what it was given and the sampler measured
``execution``,            ``include=metrics``: run time and cost so far, reported metrics, the
``metrics``,              cold start's phases
``coldStart``
``logs``                  ``include=logs``: the last lines of its log
========================  =====================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jobyard.api.dialects.states import dialect_status
from jobyard.api.dialects.tensorone.shapes import (
    camel_keys,
    priority_name,
    seconds,
    size,
    tags_from_core,
)
from jobyard.core.cost import ACCRUING, Prices, cost_view
from jobyard.core.files import LogLine
from jobyard.core.models import Job
from jobyard.core.progress import view as progress_view
from jobyard.core.services import Services
from jobyard.core.states import JobState, Substate
from jobyard.core.times import iso

OUTPUT_FILE = "output.json"  # what a job returns: shown as output.result
MAX_RESULT_BYTES = 1024 * 1024  # a larger output.json is linked, not inlined
LOG_LINES = 100  # include=logs: the last this many lines
RUNNING_SUBSTATES = frozenset({str(Substate.WARMING_UP), str(Substate.PROCESSING),
                               str(Substate.FINALIZING), str(Substate.UPLOADING)})
ENDED_AT = {"completed": "completedAt", "failed": "failedAt", "timeout": "failedAt",
            "cancelled": "cancelledAt"}


@dataclass(frozen=True, slots=True)
class View:
    """How to show jobs in one answer: what to include, as of when, links relative to what."""

    include: frozenset[str]
    now: float
    prices: Prices
    base_url: str  # the server as the client reached it (output links)


@dataclass(slots=True)
class Facts:
    """What a status shows besides the job row (read from the store and the job's files)."""

    outputs: list[dict[str, Any]]
    result: Any = None
    has_result: bool = False
    last_error: dict[str, Any] | None = None  # the failed attempt's, while a retry waits
    logs: list[LogLine] | None = None


def gather(svc: Services, job: Job, view: View) -> Facts:
    """The blocking reads a status needs (run it off the event loop)."""
    facts = Facts(outputs=[])
    if job.is_terminal:
        facts.outputs = svc.files.outputs(job, job.attempt)
        if any(f["name"] == OUTPUT_FILE for f in facts.outputs):
            _read_result(facts, svc.files.read_output(job, OUTPUT_FILE, MAX_RESULT_BYTES + 1))
    elif _waiting_for_retry(job):
        for _ts, data in reversed(svc.jobs.state_events(job)):
            ended = data.get("attempt_ended")
            if ended:
                facts.last_error = {**ended, "error": ended.get("error")}
                break
    if "logs" in view.include:
        facts.logs = svc.files.log(job, tail=LOG_LINES).lines
    return facts


def status_of(svc: Services, job: Job, view: View) -> dict[str, Any]:
    return render(job, gather(svc, job, view), view)


def render(job: Job, facts: Facts, view: View) -> dict[str, Any]:
    """The status object of ``job`` (see the module's table)."""
    name = dialect_status("tensorone", job.state, job.substate)
    prog = progress_view(job.telemetry or {}, job.attempt)
    out: dict[str, Any] = {"jobId": job.uid, "status": name}
    if job.state is JobState.RUNNING and job.substate in RUNNING_SUBSTATES:
        out["substate"] = job.substate
    # Always a whole percent: what it reported (or a tqdm bar showed), 0 before that, 100 once
    # completed whatever it last reported.
    out["progress"] = 100 if job.state is JobState.COMPLETED else percent(prog["progress"])
    endpoint = (job.dialect.get("tensorone") or {}).get("endpointId")
    if endpoint:
        out["endpointId"] = endpoint
    out["priority"] = priority_name(job.priority)
    out["createdAt"] = iso(job.created_at)
    if job.started_at is not None:
        out["startedAt"] = iso(job.started_at)
    if not job.is_terminal and prog["estimated_completion"] is not None:
        out["estimatedCompletion"] = iso(prog["estimated_completion"])
    running = job.state is JobState.RUNNING
    if prog["current_step"]:
        out["currentStep"] = prog["current_step"]
    elif running and job.substate in RUNNING_SUBSTATES:
        out["currentStep"] = job.substate  # its phase, until it names a step of its own
    if prog["metadata"] or running:
        out["metadata"] = prog["metadata"]
    if prog["throughput"]:
        tp = prog["throughput"]
        out["throughput"] = {"value": tp["value"], **({"unit": tp["unit"]} if tp["unit"] else {})}
    if job.is_terminal and job.finished_at is not None:
        out[ENDED_AT.get(name, "finishedAt")] = iso(job.finished_at)
        if job.started_at is not None:
            out["executionTime"] = seconds(job.finished_at - job.started_at)
    cost = cost_view(job, view.now, view.prices)
    metrics = _user_metrics(job)
    if job.state is JobState.COMPLETED:
        output = _output(job, facts, view)
        if output:
            out["output"] = output
    if job.is_terminal and job.started_at is not None:
        out["finalMetrics"] = {**metrics, "totalCost": cost["total"],
                               "currency": cost["currency"]}
    error = _error(job, facts, prog)
    if error:
        out["error"] = error
    if job.is_terminal and job.state is not JobState.COMPLETED:
        partial = _partial(job, facts, view, prog)
        if partial:
            out["partialResults"] = partial
    out.update(_retry(job, name))
    if job.tags:
        out["tags"] = tags_from_core(job.tags)
    if "resources" in view.include:
        out["resources"] = resources(job)
    if "metrics" in view.include:
        out["execution"] = _execution(job, view, cost, metrics)
        if metrics:
            out["metrics"] = metrics
        cold = _cold_start(job)
        if cold:
            out["coldStart"] = cold
    if "logs" in view.include:
        out["logs"] = [{"timestamp": iso(line.ts), "stream": line.stream, "message": line.text}
                       for line in facts.logs or []]
    return out


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """``format=summary``: the same facts as one line of text, beside id, status, progress."""
    parts = [f"Job {status['jobId']} is {status['status']} ({status['progress']}%)"]
    if status.get("currentStep"):
        parts.append(f"step {status['currentStep']}")
    if status.get("estimatedCompletion"):
        parts.append(f"estimated completion {status['estimatedCompletion']}")
    if status.get("executionTime") is not None:
        parts.append(f"ran {status['executionTime']:g} s")
    final = status.get("finalMetrics") or {}
    if "totalCost" in final:
        parts.append(f"cost {final['totalCost']:g} {final['currency']}")
    if status.get("error"):
        parts.append(f"error {status['error']['code']}: {status['error']['message']}")
    if status.get("nextRetryAt"):
        parts.append(f"retry {status.get('retryCount', 0) + 1} at {status['nextRetryAt']}")
    return {"jobId": status["jobId"], "status": status["status"],
            "progress": status["progress"], "summary": "; ".join(parts)}


# parts ------------------------------------------------------------------------------------------
def percent(reported: float | None) -> int:
    """A reported percentage as the whole percent done (never rounded up: 99.9 is 99)."""
    if reported is None:
        return 0
    return max(0, min(100, math.floor(float(reported))))


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _waiting_for_retry(job: Job) -> bool:
    return job.state is JobState.QUEUED and job.substate == str(Substate.WAITING_RETRY)


def _user_metrics(job: Job) -> dict[str, Any]:
    """What the job reported with ``jobyard.job.metric`` in this attempt."""
    telemetry = job.telemetry or {}
    if (telemetry.get("progress") or {}).get("attempt") != job.attempt:
        return {}
    return dict(telemetry.get("user_metrics") or {})


def _read_result(facts: Facts, data: bytes | None) -> None:
    if data is None or len(data) > MAX_RESULT_BYTES:  # a larger one is linked, not inlined
        return
    text = data.decode("utf-8", errors="replace")
    try:
        facts.result = json.loads(text)
    except ValueError:  # not JSON: the text itself is the result
        facts.result = text
    facts.has_result = True


def _file(job: Job, f: dict[str, Any], view: View) -> dict[str, Any]:
    url = (f"{view.base_url}/v1/jobs/{job.uid}/outputs/{quote(f['name'])}"
           f"?attempt={f['attempt']}")
    item = {"name": f["name"], "url": url, "size": size(f["size"]), "bytes": f["size"]}
    suffix = Path(f["name"]).suffix.lstrip(".").lower()
    if suffix:
        item["format"] = suffix
    return item


def _output(job: Job, facts: Facts, view: View) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if facts.has_result:
        out["result"] = facts.result
    files = [_file(job, f, view) for f in facts.outputs
             if f["name"] != OUTPUT_FILE or not facts.has_result]
    if len(files) == 1:
        out["outputUrl"] = files[0]["url"]
        out["size"] = files[0]["size"]
        if "format" in files[0]:
            out["format"] = files[0]["format"]
    if files:
        out["files"] = files
    return out


def _error(job: Job, facts: Facts, prog: dict[str, Any]) -> dict[str, Any] | None:
    err, step = job.error, prog["current_step"]
    if err is None and facts.last_error:
        err = facts.last_error.get("error")
        raw = (job.telemetry or {}).get("progress") or {}
        step = raw.get("step") if raw.get("attempt") == facts.last_error.get("attempt") else None
    if not err:
        return None
    details = camel_keys(dict(err.get("details") or {}))
    if step:
        details.setdefault("step", step)
    return {"code": err.get("code"), "message": err.get("message"), "details": details}


def _partial(job: Job, facts: Facts, view: View, prog: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = prog["items"] or {}
    if items.get("done") is not None:
        out["processedItems"] = _number(items["done"])
    if items.get("total") is not None:
        out["totalItems"] = _number(items["total"])
    if facts.has_result:
        out["result"] = facts.result
    files = [_file(job, f, view)["url"] for f in facts.outputs
             if f["name"] != OUTPUT_FILE or not facts.has_result]
    if files:
        out["outputFiles"] = files
    return out


def _retry(job: Job, name: str) -> dict[str, Any]:
    """``retryable``: another attempt follows (or would follow) a failure of this one."""
    waiting = _waiting_for_retry(job)
    if not (waiting or job.retry.max_retries > 0 or job.attempt > 1
            or name in ("failed", "timeout")):
        return {}
    out: dict[str, Any] = {
        "retryable": waiting or (not job.is_terminal and job.attempt <= job.retry.max_retries),
        "retryCount": job.attempt - 1,
    }
    if waiting and job.next_retry_at is not None:
        out["nextRetryAt"] = iso(job.next_retry_at)
    return out


def _execution(job: Job, view: View, cost: dict[str, Any],
               metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if job.started_at is not None:
        end = job.finished_at if job.is_terminal and job.finished_at else view.now
        out["duration"] = seconds(end - job.started_at)
    out["costAccrued"] = cost["accrued"]
    out["costPerHour"] = cost["rate_per_hour"]
    out["currency"] = cost["currency"]
    out["attempt"] = job.attempt
    for key, value in metrics.items():
        out.setdefault(key, value)
    return out


def _cold_start(job: Job) -> dict[str, Any] | None:
    cold = (job.telemetry or {}).get("cold_start")
    if not cold:
        return None
    names = {"queue_wait_s": "queueWait", "launch_s": "containerStart", "setup_s": "setup"}
    phases = {names[k]: v for k, v in (cold.get("phases") or {}).items()
              if v is not None and k in names}
    out: dict[str, Any] = {"occurred": bool(cold.get("occurred")),
                           "duration": cold.get("duration_s"), "phases": phases}
    if cold.get("setup_ended_by"):
        out["setupEndedBy"] = cold["setup_ended_by"]
    if "cache_hit" in cold:
        out["cacheHit"] = cold["cache_hit"]
    return out


def resources(job: Job) -> dict[str, Any]:
    """What the job was given and what the sampler measured of its current attempt (GPU
    fields only where NVML measured them). Live values while it runs, peaks once it ended."""
    telemetry = job.telemetry or {}
    res = telemetry.get("resources") or {}
    if res.get("attempt") != job.attempt:
        res = {}
    latest = res.get("latest") or {}
    assigned = job.assigned or {}
    cores = float(assigned.get("cpus", job.resources.cpus))
    memory_mb = int(assigned.get("memory_mb", job.resources.memory_mb) or 0)
    live = job.state in ACCRUING and bool(latest)
    ended = job.is_terminal and res.get("samples", 0) > 0
    now_gpus = {g.get("index"): g for g in latest.get("gpus") or []} if live else {}
    summary_gpus = {g.get("index"): g for g in res.get("gpus") or []}
    ids = list(assigned.get("gpus") or [])
    gpus = []
    for index in ids:
        g: dict[str, Any] = {"id": f"gpu_{index}"}
        now, seen = now_gpus.get(index, {}), summary_gpus.get(index, {})
        if now.get("name") or seen.get("name"):
            g["type"] = now.get("name") or seen.get("name")
        if "utilization" in now:
            g["utilization"] = now["utilization"]
        if "memory_used_bytes" in now:
            g["memoryUsed"] = size(now["memory_used_bytes"])
        total = now.get("memory_total_bytes") or seen.get("memory_total_bytes")
        if total:
            g["memoryTotal"] = size(total)
        if "temperature_c" in now:
            g["temperature"] = now["temperature_c"]
        if "power_w" in now:
            g["powerUsage"] = f"{now['power_w']:g}W"
        if ended and seen.get("peak_utilization") is not None:
            g["peakUtilization"] = seen["peak_utilization"]
        if ended and seen.get("peak_memory_used_bytes") is not None:
            g["peakMemoryUsed"] = size(seen["peak_memory_used_bytes"])
        gpus.append(g)
    out: dict[str, Any] = {"gpuCount": len(ids) if assigned else job.resources.gpus}
    types = [g["type"] for g in gpus if "type" in g]
    if types:
        out["gpuType"] = types[0]
    utils = [g["utilization"] for g in gpus if "utilization" in g]
    if utils:
        out["gpuUtilization"] = round(sum(utils) / len(utils), 1)
    cpu: dict[str, Any] = {}
    if live and "rss_bytes" in latest:
        out["memoryUsage"] = size(latest["rss_bytes"])
    if memory_mb > 0:
        out["memoryTotal"] = size(memory_mb * 1024 * 1024)
    if live and latest.get("cpu_percent") is not None:
        out["cpuUsage"] = cpu["utilization"] = round(latest["cpu_percent"] / cores, 1)
    if ended:
        peaks = [g["peakUtilization"] for g in gpus if "peakUtilization" in g]
        if peaks:
            out["peakGpuUtilization"] = max(peaks)
        peak_rss = (res.get("memory") or {}).get("peak_rss_bytes")
        if peak_rss is not None:
            out["peakMemoryUsage"] = size(peak_rss)
        peak_cpu = (res.get("cpu") or {}).get("peak_percent")
        if peak_cpu is not None:
            out["peakCpuUsage"] = round(peak_cpu / cores, 1)
        mark = res.get("cpu_mark")
        if mark:
            out["totalComputeTime"] = round(float(mark[1]), 3)
    cpu["cores"] = _number(cores)
    if memory_mb > 0:
        cpu["memory"] = size(memory_mb * 1024 * 1024)
    if gpus:
        out["gpus"] = gpus
    out["cpu"] = cpu
    return out
