"""``jobyard.clients.tensorone.TensorOneClient``: its results (attribute access over the JSON),
its errors, and every call against a real server running real jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobyard.clients.tensorone import (
    AccessDeniedError,
    AuthenticationError,
    BatchStatus,
    InvalidRequestError,
    JobStatus,
    NotFoundError,
    RateLimitError,
    Record,
    TensorOneClient,
    TensorOneError,
)
from jobyard.testing import ServerProcess
from tests.api.dialects.tensorone.conftest import (
    create_endpoint,
    outsider_key,
    wait_status,
)


# results and errors, without a server ------------------------------------------------------------
def test_records_read_camel_case_json_in_snake_case() -> None:
    status = JobStatus({"jobId": "job_1", "status": "failed", "currentStep": "encode",
                        "resources": {"gpuUtilization": 85, "gpus": [{"id": "gpu_0"}]},
                        "error": {"code": "X", "message": "boom", "details": {"exitCode": 3}},
                        "snake_case": 1})
    assert (status.job_id, status.current_step, status.snake_case) == ("job_1", "encode", 1)
    assert status.resources.gpu_utilization == 85
    assert status.resources.gpus[0].id == "gpu_0"
    assert status.error.message == "boom" and status.error.details.exit_code == 3
    assert status.progress is None and status.output is None  # absent fields read as None
    assert status["currentStep"] == "encode" and "jobId" in status
    assert status.is_terminal and not JobStatus({"status": "running"}).is_terminal
    assert status.to_dict()["jobId"] == "job_1"
    assert Record({"a": 1}) == {"a": 1} == Record({"a": 1}) and not Record({})
    assert str(Record({"result": "ok"})) == "{'result': 'ok'}"
    with pytest.raises(AttributeError):
        status.status = "completed"
    batch = BatchStatus([status], [Record({"jobId": "job_2", "error": "JOB_NOT_FOUND"})])
    assert list(batch) == [status] and batch.errors[0].job_id == "job_2"


def test_error_answers_become_exceptions() -> None:
    from jobyard.clients.tensorone import _raise_for

    body = {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many status check requests",
            "details": {"limit": 100, "window": "1m", "retryAfter": 30}}
    with pytest.raises(RateLimitError) as caught:
        _raise_for(httpx.Response(429, json=body, headers={"Retry-After": "30"}))
    err = caught.value
    assert (err.status_code, err.code, err.message) == (429, "RATE_LIMIT_EXCEEDED",
                                                       "Too many status check requests")
    assert err.retry_after == 30 and err.details.window == "1m"
    with pytest.raises(TensorOneError) as caught:  # not an envelope: the status says it
        _raise_for(httpx.Response(502, text="bad gateway"))
    assert caught.value.code == "HTTP_502"
    _raise_for(httpx.Response(200, json={}))  # no error


def test_the_client_needs_a_key_and_finds_the_server_in_the_env(monkeypatch) -> None:
    for name in ("TENSORONE_API_KEY", "JOBYARD_API_KEY", "TENSORONE_BASE_URL", "JOBYARD_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError):
        TensorOneClient()
    assert TensorOneClient(api_key="k").base_url == "https://api.tensorone.ai"
    monkeypatch.setenv("TENSORONE_BASE_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("TENSORONE_API_KEY", "from-env")
    client = TensorOneClient()
    assert (client.base_url, client.api_key) == ("http://127.0.0.1:1", "from-env")


# against a server --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[TensorOneClient]:
    with server.client() as api:
        create_endpoint(api, "client_ep", resources={"gpus": 1})
    with TensorOneClient(api_key=server.admin_key, base_url=server.url) as c:
        yield c


def test_run_status_batch_and_summary(server: ServerProcess, client: TensorOneClient,
                                      tmp_path: Path) -> None:
    gate = str(tmp_path / "go")
    queued = client.endpoints.run("ep_client_ep", {"release": gate, "reports": [
        {"progress": 33, "step": "step_one", "metadata": {"done": 1}}]}, priority="high",
        tags={"who": "client"})
    assert queued.status == "queued" and queued.job_id.startswith("job_")
    with server.client() as api:
        wait_status(api, queued.job_id, lambda s: s.get("progress") == 33)

    status = client.jobs.get_status(queued.job_id, include=["resources", "metrics"])
    assert (status.status, status.progress, status.current_step) == ("running", 33, "step_one")
    assert status.metadata.done == 1 and status.priority == "high"
    assert status.tags.to_dict() == {"who": "client"}
    assert status.resources.gpu_count == 1 and status.resources.gpu_utilization is None
    assert status.execution.cost_accrued > 0
    assert client.jobs.get_status(queued.job_id, include="logs").logs == []

    short = client.jobs.get_status(queued.job_id, format="summary")
    assert short.summary.startswith(f"Job {queued.job_id} is running (33%)")

    batch = client.jobs.get_batch_status(job_ids=[queued.job_id, "job_gone"],
                                         include=["metrics"])
    assert [s.job_id for s in batch] == [queued.job_id]
    assert batch[0].execution is not None and batch[0].resources is None
    assert [(e.job_id, e.error) for e in batch.errors] == [("job_gone", "JOB_NOT_FOUND")]
    Path(gate).touch()
    with server.client() as api:
        wait_status(api, queued.job_id, "completed")

    done = client.endpoints.run_sync("ep_client_ep", {"numbers": [1, 2], "output": {}})
    assert done.status == "completed" and done.output.result.sum == 3


def test_stream_status(server: ServerProcess, client: TensorOneClient, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    job = client.endpoints.run("ep_client_ep", {"hold": str(hold), "reports": [
        {"progress": 20, "step": "a", "pause": 0.3}, {"progress": 60, "step": "b", "pause": 0.3}],
        "output": {"answer": 42}})

    async def follow() -> list[JobStatus]:
        updates = []
        async for update in client.jobs.stream_status(job.job_id):
            updates.append(update)
            hold.touch()  # the job goes on once the stream has begun
        return updates

    updates = asyncio.run(follow())
    assert updates[-1].status == "completed" and updates[-1].output.result.answer == 42
    assert all(u.job_id == job.job_id for u in updates)
    assert {(u.progress, u.current_step) for u in updates} >= {(20, "a"), (60, "b")}
    assert sum(u.is_terminal for u in updates) == 1


def test_errors_from_the_server(server: ServerProcess, client: TensorOneClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.jobs.get_status("job_nope")
    assert caught.value.code == "JOB_NOT_FOUND"
    assert caught.value.details.job_id == "job_nope"
    assert "Job ID is incorrect" in caught.value.details.possible_reasons
    with pytest.raises(InvalidRequestError):
        client.jobs.get_status("job_nope", include=["everything"])
    with pytest.raises(NotFoundError) as caught:
        client.endpoints.run("ep_nope", {})
    assert caught.value.code == "ENDPOINT_NOT_FOUND"

    mine = client.endpoints.run("ep_client_ep", {"output": {}})
    other = TensorOneClient(api_key=outsider_key(server, "client-other"), base_url=server.url)
    with pytest.raises(AccessDeniedError) as caught:
        other.jobs.get_status(mine.job_id)
    assert caught.value.details.required_permission == "jobs:read"

    async def stream_denied() -> None:
        async for _ in other.jobs.stream_status(mine.job_id):
            pass

    with pytest.raises(AccessDeniedError):
        asyncio.run(stream_denied())
    with pytest.raises(AuthenticationError):
        TensorOneClient(api_key="wrong", base_url=server.url).jobs.get_status(mine.job_id)
