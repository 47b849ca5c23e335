"""Every example of TensorOne's job-status page (docs/seeds/002_a0dc03d19ba92d2a.txt),
replayed against a real server running real jobs: the curl requests (sent with httpx, same
method, headers and parameters) and the Python SDK example (run unchanged but for its import
line). Answers are checked field by field: the page's shape, with the values the job really
produced."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from jobyard import ids
from jobyard.core.inputs import SubmitJob
from jobyard.core.jobs import JobService
from jobyard.core.models import Resources
from jobyard.core.times import iso
from jobyard.store.engine import make_engines
from jobyard.store.sql import SqlStore
from jobyard.testing import ServerProcess, wait_until
from tests.api.dialects.tensorone.conftest import (
    API_KEY,
    CPU_HOUR,
    GPU_HOUR,
    TERMINAL,
    WORKER,
    create_endpoint,
    outsider_key,
    run,
    wait_status,
    when,
)

PAGE = Path(__file__).resolve().parents[4] / "docs" / "seeds" / "002_a0dc03d19ba92d2a.txt"
SIZE = re.compile(r"^\d+(\.\d)?(B|KB|MB|GB|TB)$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# The page's example values, reported by the jobs themselves.
PAGE_METADATA = {"imagesProcessed": 750, "totalImages": 1000, "averageProcessingTime": 1.2,
                 "currentBatch": 15, "totalBatches": 20}
PAGE_TAGS = {"userId": "user_12345", "projectId": "proj_batch_processing",
             "category": "image_enhancement"}
MB = 1024 * 1024


def page_text() -> str:
    return PAGE.read_text()


def page_json_blocks() -> list[dict[str, Any]]:
    """The page's response examples (the JSON objects in it), in order."""
    text, found, decoder, i = page_text(), [], json.JSONDecoder(), 0
    while (i := text.find("{\n", i)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        found.append(obj)
        i = end
    return found


def page_python_example() -> str:
    text = page_text()
    start = text.index("from tensorone import TensorOneClient")
    return text[start:text.index("\nJavaScript SDK", start)]


def example(key: str) -> dict[str, Any]:
    """The page's response example whose first key/value identifies it."""
    for block in page_json_blocks():
        if key in json.dumps(block):
            return block
    raise KeyError(key)


def paths(obj: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON object (``resources.gpus[].id``)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            out |= paths(v, prefix + k + ".")
    elif isinstance(obj, list):
        for v in obj:
            out |= paths(v, prefix.rstrip(".") + "[].")
    return out


@pytest.fixture(scope="module")
def endpoints(server: ServerProcess) -> dict[str, str]:
    with server.client() as api:
        return {
            "image": create_endpoint(api, "image_processor", resources={"gpus": 1})["id"],
            "text": create_endpoint(api, "text_generator")["id"],
            "video": create_endpoint(api, "video_processor")["id"],
        }


@pytest.fixture(scope="module")
def outsider(server: ServerProcess) -> str:
    return outsider_key(server, "elsewhere")


def curl_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What the page's curl examples send."""
    return {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json",
            **(extra or {})}


def running_image_job(api: httpx.Client, endpoint: str, release: str) -> str:
    """The page's "Successful Response" job: 75 % through processing_images, held running."""
    job_id = run(api, endpoint, {
        "print": ["loading model", "processing batch 15"], "burn": 0.2,
        "reports": [{"progress": 40, "step": "loading"},
                    {"progress": 75, "step": "processing_images", "metadata": PAGE_METADATA}],
        "metrics": {"tokensProcessed": 125000, "apiCalls": 1247},
        "release": release}, priority="high", tags=PAGE_TAGS)
    wait_status(api, job_id, lambda s: s.get("progress") == 75)
    return job_id


# curl: Get Job Status / Basic Status Check / Detailed Status -------------------------------------
def test_get_job_status_and_the_successful_response(server, endpoints, release) -> None:
    gate = release()
    with server.client() as api:
        job_id = running_image_job(api, endpoints["image"], gate)

        # The page's first example: `--header 'Authorization: <api-key>'` (the bare key).
        r = httpx.get(f"{server.url}/v2/jobs/{job_id}/status",
                      headers={"Authorization": API_KEY})
        assert r.status_code == 200, r.text
        first = r.json()
        assert {"jobId", "status", "progress"} <= set(first)
        assert (first["jobId"], first["status"], first["progress"]) == (job_id, "running", 75)
        assert "result" not in first and "error" not in first  # running: nothing real yet

        # Basic Status Check (Bearer, Content-Type on a GET).
        r = httpx.get(f"{server.url}/v2/jobs/{job_id}/status", headers=curl_headers())
        assert r.status_code == 200, r.text
        basic = r.json()
        assert basic["jobId"] == job_id and basic["status"] == "running"
        assert not {"resources", "execution", "logs", "coldStart"} & set(basic)

        # Detailed Status with Logs and Metrics: ?include=logs,metrics,resources; wait until
        # the sampler has measured the process and its two lines are in the log (they pass
        # through its supervisor's pipe, which can lag its reports on a loaded machine).
        def detailed() -> dict[str, Any] | None:
            r = httpx.get(f"{server.url}/v2/jobs/{job_id}/status?include=logs,metrics,resources",
                          headers=curl_headers())
            assert r.status_code == 200, r.text
            body = r.json()
            return body if "memoryUsage" in body["resources"] and len(body["logs"]) >= 2 else None

        body = wait_until(detailed, timeout=15, interval=0.05)
        now = datetime.now(UTC)
        page = example('"status": "running"')
        missing = paths(page) - paths(body)
        # Without NVML (virtual GPUs) there is no GPU model or utilization, and the endpoint set
        # no memory limit: those fields are left out, never invented.
        assert missing == {"resources.gpuType", "resources.gpuUtilization",
                           "resources.memoryTotal"}, missing
        assert body["jobId"] == job_id and body["status"] == "running"
        assert body["substate"] == "processing"
        assert body["progress"] == 75
        assert body["endpointId"] == endpoints["image"] == "ep_image_processor"
        assert body["priority"] == "high"
        created, started = when(body["createdAt"]), when(body["startedAt"])
        assert created <= started <= now
        assert when(body["estimatedCompletion"]) > started
        assert body["currentStep"] == "processing_images"
        assert body["metadata"] == PAGE_METADATA
        assert body["tags"] == PAGE_TAGS
        res = body["resources"]
        assert SIZE.match(res["memoryUsage"]) and isinstance(res["cpuUsage"], int | float)
        assert res["gpuCount"] == 1 and len(res["gpus"]) == 1
        assert re.fullmatch(r"gpu_\d", res["gpus"][0]["id"])
        assert set(res["gpus"][0]) == {"id"}  # no NVML: no measured GPU fields
        assert res["cpu"] == {"cores": 1, "utilization": res["cpuUsage"]}
        ex = body["execution"]
        running_for = (now - started).total_seconds()
        assert 0 < ex["duration"] <= running_for + 0.5
        rate = CPU_HOUR + GPU_HOUR  # one CPU and one GPU
        assert ex["costPerHour"] == rate and ex["currency"] == "USD"
        assert ex["costAccrued"] == pytest.approx(ex["duration"] * rate / 3600, abs=0.02)
        assert ex["costAccrued"] > 0
        assert (ex["tokensProcessed"], ex["apiCalls"]) == (125000, 1247)
        assert body["metrics"] == {"tokensProcessed": 125000, "apiCalls": 1247}
        cold = body["coldStart"]
        assert cold["occurred"] is True and cold["duration"] >= 0
        assert {"queueWait", "containerStart", "setup"} <= set(cold["phases"])
        assert cold["duration"] == pytest.approx(
            cold["phases"]["containerStart"] + cold["phases"]["setup"], abs=0.002)
        assert "cacheHit" not in cold  # the local executor cannot know it
        lines = [(x["stream"], x["message"]) for x in body["logs"]]
        assert lines[:2] == [("stdout", "loading model"), ("stdout", "processing batch 15")]
        assert all(ISO.match(x["timestamp"]) for x in body["logs"])
        Path(gate).touch()
        wait_status(api, job_id, "completed")


# Completed Job Response --------------------------------------------------------------------------
def test_completed_job_response(server, endpoints) -> None:
    numbers = [3, 4, 5]
    with server.client() as api:
        job_id = run(api, endpoints["text"], {
            "numbers": numbers, "burn": 0.3,
            "reports": [{"progress": 60, "step": "generating"}],
            "metrics": {"documentsGenerated": 50, "wordsGenerated": 45000, "averageLatency": 17.4},
            "output": {"result": "Generated content successfully saved to storage"},
            "files": {"doc_abc123.pdf": int(2.4 * MB)}})
        body = wait_status(api, job_id, TERMINAL, include="resources")
    page = example('"status": "completed"')
    missing = paths(page) - paths(body)
    assert missing == {"resources.peakGpuUtilization"}, missing  # no NVML, no GPU
    assert body["status"] == "completed" and body["progress"] == 100
    assert body["endpointId"] == "ep_text_generator"
    created, started, completed = (when(body[k]) for k in ("createdAt", "startedAt",
                                                           "completedAt"))
    assert created <= started < completed
    assert body["executionTime"] == pytest.approx((completed - started).total_seconds(),
                                                  abs=0.002)
    out = body["output"]
    assert out["result"] == {"result": "Generated content successfully saved to storage",
                             "inputSeen": out["result"]["inputSeen"], "sum": sum(numbers)}
    assert out["result"]["inputSeen"]["numbers"] == numbers
    assert (out["size"], out["format"]) == ("2.4MB", "pdf")
    with server.client(API_KEY) as api:
        download = api.get(out["outputUrl"])
    assert download.status_code == 200 and len(download.content) == int(2.4 * MB)
    final = body["finalMetrics"]
    assert {k: final[k] for k in ("documentsGenerated", "wordsGenerated", "averageLatency")} == {
        "documentsGenerated": 50, "wordsGenerated": 45000, "averageLatency": 17.4}
    assert final["totalCost"] == pytest.approx(body["executionTime"] * CPU_HOUR / 3600,
                                               abs=0.003)
    res = body["resources"]
    assert SIZE.match(res["peakMemoryUsage"])
    assert res["totalComputeTime"] >= 0.2  # it burned 0.3 s of CPU
    assert "memoryUsage" not in res and "cpuUsage" not in res  # live values end with the job
    assert "error" not in body and "partialResults" not in body


# Failed Job Response -----------------------------------------------------------------------------
def test_failed_job_response(server, endpoints) -> None:
    spec = {"reports": [{"progress": 45, "step": "video_encoding", "items": [15420, 34200]}],
            "files": {"partial_output_1.mp4": 4096}, "exit": 3}
    with server.client() as api:
        job_id = run(api, endpoints["video"], spec, retry={"maxRetries": 1, "backoffSeconds": 1})
        waiting = wait_status(api, job_id, lambda s: s.get("retryCount") == 1)
        assert waiting["status"] == "queued" and waiting["retryable"] is True
        retry = first_retry_event(api, job_id)
        assert waiting["nextRetryAt"] == iso(retry["next_retry_at"])
        assert retry["next_retry_at"] - when(retry["ts"]).timestamp() == pytest.approx(1, abs=0.05)
        assert waiting["error"] == {"code": "NONZERO_EXIT", "message": "exited with code 3",
                                    "details": {"exitCode": 3, "step": "video_encoding"}}
        assert retry["attempt_ended"]["error"]["message"] == "exited with code 3"
        assert waiting["progress"] == 0 and "startedAt" not in waiting  # the next attempt

        body = wait_status(api, job_id, TERMINAL)
    page = example('"status": "failed"')
    missing = paths(page) - paths(body)
    # The page's partial results are its job's own counters; ours are the items the job
    # reported, and no retry is due any more (both attempts failed).
    assert missing == {"partialResults.processedFrames", "partialResults.totalFrames",
                       "nextRetryAt", "error.details.memoryRequired",
                       "error.details.memoryAvailable", "error.details.suggestion"}, missing
    assert body["status"] == "failed" and body["progress"] == 45
    assert body["endpointId"] == "ep_video_processor"
    assert when(body["createdAt"]) <= when(body["startedAt"]) < when(body["failedAt"])
    assert body["error"] == {"code": "NONZERO_EXIT", "message": "exited with code 3",
                             "details": {"exitCode": 3, "step": "video_encoding"}}
    partial = body["partialResults"]
    assert (partial["processedItems"], partial["totalItems"]) == (15420, 34200)
    [url] = partial["outputFiles"]
    assert url.endswith(f"/v1/jobs/{job_id}/outputs/partial_output_1.mp4?attempt=2")
    with server.client(API_KEY) as api:
        assert len(api.get(url).content) == 4096
    assert (body["retryable"], body["retryCount"]) == (False, 1)
    assert "completedAt" not in body and "output" not in body


def first_retry_event(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job's state event that scheduled its retry (native event stream)."""
    with connect_sse(api, "GET", f"/v1/jobs/{job_id}/events") as source:
        for sse in source.iter_sse():
            data = sse.json()
            if "attempt_ended" in data:
                return data
    raise AssertionError("no retry event")


# Multiple Job Status Check -----------------------------------------------------------------------
def test_batch_status_curl_example(server, endpoints, release) -> None:
    gate = release()
    with server.client() as api:
        done = run(api, endpoints["text"], {"output": {}, "metrics": {"documentsGenerated": 2}})
        held = run(api, endpoints["text"], {"release": gate})
        wait_status(api, done, TERMINAL)
        wait_status(api, held, "running")
    r = httpx.post(f"{server.url}/v2/jobs/status/batch", headers=curl_headers(),
                   json={"jobIds": [held, done, "job_3456789012cdefgh"],
                         "include": ["metrics"]})
    Path(gate).touch()
    with server.client() as api:
        wait_status(api, held, "completed")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["jobId"] for s in body["jobs"]] == [held, done]  # the order asked
    assert [s["status"] for s in body["jobs"]] == ["running", "completed"]
    for s in body["jobs"]:
        assert "execution" in s and "resources" not in s and "logs" not in s
    assert body["jobs"][1]["execution"]["documentsGenerated"] == 2
    assert body["jobs"][0]["execution"]["duration"] > 0
    assert body["errors"] == [{
        "jobId": "job_3456789012cdefgh", "error": "JOB_NOT_FOUND",
        "message": "Job job_3456789012cdefgh does not exist or has expired",
        "details": {"jobId": "job_3456789012cdefgh",
                    "possibleReasons": example('"JOB_NOT_FOUND"')["details"]["possibleReasons"]},
    }]


# Real-time Updates -------------------------------------------------------------------------------
def test_status_stream_curl_example(server, endpoints, release) -> None:
    hold = release()
    with server.client() as api:
        job_id = run(api, endpoints["text"], {
            "hold": hold, "reports": [{"progress": 25, "step": "tokenizing", "pause": 0.3},
                        {"progress": 50, "step": "generating", "pause": 0.3},
                        {"progress": 75, "step": "generating", "pause": 0.3}],
            "output": {"words": 3}})
    updates = []
    with httpx.Client(timeout=30) as client, connect_sse(
            client, "GET", f"{server.url}/v2/jobs/{job_id}/status/stream",
            headers={"Authorization": f"Bearer {API_KEY}",
                     "Accept": "text/event-stream"}) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            if not sse.data:  # a heartbeat comment (httpx-sse makes it an empty message)
                continue
            assert sse.event == "status" and sse.id
            updates.append(sse.json())
            Path(hold).touch()  # the job goes on once the stream has begun
    # It ends by itself once the job ended; every update is a whole status object.
    assert updates[-1]["status"] == "completed" and updates[-1]["progress"] == 100
    assert updates[-1]["output"]["result"]["words"] == 3
    assert all(u["jobId"] == job_id for u in updates)
    progress = [u["progress"] for u in updates if "progress" in u]
    assert progress == sorted(progress)
    seen = {(u.get("progress"), u.get("currentStep")) for u in updates}
    assert {(25, "tokenizing"), (50, "generating"), (75, "generating")} <= seen
    assert len({json.dumps(u, sort_keys=True) for u in updates}) == len(updates)  # no repeats


# GPU utilization / cold start blocks -------------------------------------------------------------
def test_resource_and_cold_start_blocks_have_the_page_shape(server, endpoints, release) -> None:
    gate = release()
    with server.client() as api:
        job_id = running_image_job(api, endpoints["image"], gate)
        body = wait_status(api, job_id, lambda s: "utilization" in s["resources"]["cpu"],
                           include="resources,metrics")
        Path(gate).touch()
        wait_status(api, job_id, "completed")
    gpu_page = example('"gpus"')["resources"]
    res = body["resources"]
    # Per GPU: the id is real; type, utilization, memory, temperature and power need NVML.
    assert set(gpu_page["gpus"][0]) - set(res["gpus"][0]) == {
        "type", "utilization", "memoryUsed", "memoryTotal", "temperature", "powerUsage"}
    assert set(gpu_page["cpu"]) - set(res["cpu"]) == {"memory"}  # the endpoint set no memory
    cold_page = example('"coldStart"')["coldStart"]
    cold = body["coldStart"]
    # Its phases are Jobyard's (queue wait, process start, setup until the first sign of
    # life); the local executor knows no cache and makes no suggestions.
    assert set(cold_page) - set(cold) == {"cacheHit", "optimizationSuggestions"}
    assert cold["phases"]["containerStart"] >= 0 and cold["phases"]["setup"] >= 0


# Error Handling ----------------------------------------------------------------------------------
def test_error_examples(server, endpoints, outsider, release) -> None:
    r = httpx.get(f"{server.url}/v2/jobs/job_invalid/status", headers=curl_headers())
    assert r.status_code == 404
    assert r.json() == example('"JOB_NOT_FOUND"')  # word for word (30 days: the default)

    gate = release()
    with server.client() as api:
        job_id = run(api, endpoints["text"], {"release": gate})
    r = httpx.get(f"{server.url}/v2/jobs/{job_id}/status",
                  headers={"Authorization": f"Bearer {outsider}"})
    Path(gate).touch()
    with server.client() as api:
        wait_status(api, job_id, "completed")
    assert r.status_code == 403
    page = example('"ACCESS_DENIED"')
    assert r.json() == {**page, "details": {**page["details"], "jobId": job_id,
                                            "userPermissions": []}}
    r = httpx.get(f"{server.url}/v2/jobs/{job_id}/status", headers={"Authorization": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "UNAUTHORIZED"


# Python SDK --------------------------------------------------------------------------------------
def _page_jobs(database_url: str, endpoint: str, tmp: Path, gate: str,
               monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's own job ids, made with those ids (as another replica would make them) on
    the server's database: real jobs of the endpoint, which the server's daemon runs. The
    first holds at 75 % until ``gate`` exists."""
    engines = make_engines(database_url)
    try:
        store = SqlStore(engines)
        who = store.accounts.principal_for_key(ids.hash_key(API_KEY))
        service = JobService(store.jobs, store.kv, Resources(gpus=4, cpus=64, memory_mb=1 << 30))
        specs = {
            "job_1234567890abcdef": {
                "reports": [{"progress": 30, "step": "loading"},
                            {"progress": 75, "step": "processing_images"}],
                "release": gate, "output": {"images": 1000}},
            "job_2345678901bcdefg": {"burn": 0.1, "output": {}},
        }
        for uid, spec in specs.items():
            (tmp / uid).mkdir()
            (tmp / uid).chmod(0o777)  # its workdir: the job runs as its org's own uid
            (tmp / uid / "input.json").write_text(json.dumps(spec))
            monkeypatch.setattr(ids, "job_uid", lambda uid=uid: uid)
            service.submit(who, SubmitJob(
                command=["python3", str(WORKER)], name="image_processor",
                workdir=str(tmp / uid), outputs=("output.json",),
                env={"TENSORONE_INPUT_FILE": str(tmp / uid / "input.json"),
                     "TENSORONE_OUTPUT_FILE": str(tmp / uid / "output.json")},
                dialect={"tensorone": {"endpointId": endpoint}}, priority=10,
                tags=("userId:user_12345",)))
    finally:
        engines.dispose()


def example_module() -> str:
    """The page's Python example with its import line changed, and nothing else."""
    code = page_python_example()
    assert code.startswith("from tensorone import TensorOneClient\n")
    return code.replace("from tensorone import TensorOneClient",
                        "from jobyard.clients.tensorone import TensorOneClient", 1)


def test_python_sdk_example_runs_unchanged(server, endpoints, tmp_path, monkeypatch) -> None:
    gate = str(tmp_path / "release")
    _page_jobs(server.database_url, endpoints["image"], tmp_path, gate, monkeypatch)
    script = tmp_path / "example.py"
    script.write_text(example_module())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBYARD_", "TENSORONE_"))}
    env.update(TENSORONE_BASE_URL=server.url, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    out = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line.rstrip("\n"))
            if out[-1] == "Progress: 75% - processing_images":
                Path(gate).touch()  # the stream has shown it at 75 %: let it finish
        assert proc.wait() == 0, "\n".join(out)
    finally:
        watchdog.cancel()
    # check_job_status: "Job <id>: <status> (<progress>%)" (no progress reported yet: 0)
    assert re.fullmatch(r"Job job_1234567890abcdef: (queued|initializing|running) "
                        r"\(\d+%\)", out[0]), out
    # check_multiple_jobs: both jobs, and their resources (no NVML: GPU usage is None).
    jobs = [line for line in out if re.fullmatch(r"Job job_\w+: \w+", line)]
    assert jobs[0] in ("Job job_1234567890abcdef: queued", "Job job_1234567890abcdef: running",
                       "Job job_1234567890abcdef: initializing"), out
    assert jobs[1].startswith("Job job_2345678901bcdefg: "), out
    assert out.count("  GPU Usage: None%") == 2, out
    assert len([line for line in out if line.startswith("  Memory: ")]) == 2, out
    # monitor_job_with_streaming: progress as it came, then the output.
    progress = [line for line in out if line.startswith("Progress: ")]
    assert "Progress: 75% - processing_images" in progress, out
    assert progress[-1] == "Progress: 100% - processing_images", out
    assert out[-1].startswith("Job completed! Output: {'result': {'images': 1000, "
                              "'inputSeen': "), "\n".join(out)


def test_python_sdk_example_functions(server, endpoints, monkeypatch, release) -> None:
    """The example's functions, called with jobs of this server."""
    monkeypatch.setenv("TENSORONE_BASE_URL", server.url)
    scope: dict[str, Any] = {"__name__": "example"}
    exec(compile(example_module(), "example.py", "exec"), scope)
    gate = release()
    with server.client() as api:
        held = run(api, endpoints["video"], {"release": gate, "reports": [
            {"progress": 10, "step": "decoding"}]})
        failing = run(api, endpoints["video"], {"exit": 4})
        wait_status(api, held, lambda s: s.get("progress") == 10)
        wait_status(api, failing, TERMINAL)

    current = scope["check_job_status"](held)
    assert (current.status, current.progress, current.job_id) == ("running", 10, held)
    assert current.current_step == "decoding" and current.endpoint_id == "ep_video_processor"

    scope["check_multiple_jobs"]([held, failing])

    Path(gate).touch()
    ended = scope["monitor_job_with_backoff"](failing, max_wait=30)
    assert ended.status == "failed" and ended.error.code == "NONZERO_EXIT"
    assert ended.error.details.exit_code == 4

    asyncio.run(scope["monitor_job_with_streaming"](failing))  # ends at once: it failed
    with server.client() as api:
        wait_status(api, held, "completed")
    finished = scope["monitor_job_with_backoff"](held, max_wait=30)
    assert finished.status == "completed" and finished.progress == 100
