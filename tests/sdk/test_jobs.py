"""The SDK's job calls against a real server (SQLite and PostgreSQL), sync and async."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

import jobyard
from jobyard import errors
from jobyard.sdk import ConnectionFailed
from jobyard.testing import ServerProcess, async_wait_until, free_port, wait_until


@pytest.fixture
def client(server: ServerProcess) -> Iterator[jobyard.Client]:
    with jobyard.Client(server.url, server.admin_key) as c:
        yield c


def _tag() -> str:
    return "t" + uuid.uuid4().hex[:10]


def test_submit_logs_wait_stream(client: jobyard.Client) -> None:
    tag = _tag()
    job = client.jobs.submit(["sh", "-c", "echo out; echo err >&2; exit 3"], name="three",
                             tags=[tag], env={"A": "1"})
    assert job.id.startswith("job_") and job.name == "three" and job.tags == [tag]
    assert isinstance(job.created_at, datetime) and job.raw["id"] == job.id
    assert client.jobs.get(job.number).id == job.id  # both id forms

    lines = list(client.jobs.logs(job.id, follow=True))  # ends once the job ended
    assert [(ln.n, ln.stream, ln.text) for ln in lines] == [(0, "stdout", "out"),
                                                            (1, "stderr", "err")]
    done = client.jobs.wait(job, timeout=20)
    assert (done.state, done.exit_code, done.is_terminal) == ("error", 3, True)
    assert done.error and done.error["code"] == "NONZERO_EXIT"
    assert done.finished_at is not None and done.duration_s is not None

    page = client.jobs.logs(job.id)
    assert [ln.text for ln in page.lines] == ["out", "err"] and page.eof and page.next_offset == 2
    assert [ln.text for ln in client.jobs.logs(job.id, tail=1).lines] == ["err"]
    assert [ln.text for ln in client.jobs.logs(job.id, offset=1).lines] == ["err"]
    assert [ln.text for ln in client.jobs.logs(job.id, offset=1, follow=True)] == ["err"]

    events = list(client.jobs.stream(job.id))
    assert events[-1].is_terminal and events[-1].state == "error"
    assert events[0].job_id == job.id and isinstance(events[0].ts, datetime)
    assert next(e.state for e in events if e.kind == "state") == "queued"
    resumed = list(client.jobs.stream(job.id, last_event_id=events[0].id))
    assert [e.id for e in resumed] == [e.id for e in events[1:]]


def test_list_pages_filters_and_idempotency(client: jobyard.Client) -> None:
    tag = _tag()
    ids = [client.jobs.submit(["echo", str(i)], tags=[tag]).id for i in range(5)]
    page = client.jobs.list_page(tag=tag, limit=2)
    assert [j.id for j in page.items] == ids[::-1][:2] and page.next_cursor
    assert [j.id for j in client.jobs.list(tag=tag, limit=2)] == ids[::-1]  # across 3 pages

    for job_id in ids:
        client.jobs.wait(job_id, timeout=20)
    assert len(list(client.jobs.list(state="completed", tag=tag))) == 5
    assert list(client.jobs.list(state="running", tag=tag)) == []

    full = client.jobs.submit(
        "true", name="full", env={"K": "V"}, workdir="/tmp", gpus=1, cpus=0.5, memory_mb=64,
        priority=5, time_limit_s=60, retry=2, tags=[tag, "more"],
    )
    assert full.resources == {"gpus": 1, "cpus": 0.5, "memory_mb": 64} and full.gpus == 1
    assert (full.priority, full.time_limit_s, full.retry["max_retries"]) == (5, 60, 2)
    assert (full.env, full.workdir, full.tags) == ({"K": "V"}, "/tmp", [tag, "more"])
    with pytest.raises(TypeError):
        client.jobs.submit("true", gpu=1)  # type: ignore[call-arg]

    first = client.jobs.submit("echo once", tags=[tag], idempotency_key=tag)
    again = client.jobs.submit("echo once", tags=[tag], idempotency_key=tag)
    assert again.id == first.id
    with pytest.raises(errors.Conflict):
        client.jobs.submit("echo other", tags=[tag], idempotency_key=tag)


def test_cancel_and_typed_errors(server: ServerProcess, client: jobyard.Client) -> None:
    job = client.jobs.submit(["sleep", "30"], tags=[_tag()])
    wait_until(lambda: client.jobs.get(job.id).state == "running", timeout=20)
    with pytest.raises(TimeoutError):
        client.jobs.wait(job.id, timeout=0.3)
    assert client.jobs.cancel(job.id).state in ("canceling", "canceled")
    done = client.jobs.wait(job.id, timeout=20)
    assert done.state == "canceled" and done.cancel_receipt and done.cancel_requested_at
    assert client.jobs.cancel(job.id).state == "canceled"  # again: 200, no error

    ok = client.jobs.wait(client.jobs.submit("true"), timeout=20)
    assert ok.state == "completed" and ok.exit_code == 0
    with pytest.raises(errors.Conflict) as conflict:
        client.jobs.cancel(ok.id)
    assert conflict.value.status == 409

    with pytest.raises(errors.NotFound) as missing:
        client.jobs.get("job_doesnotexist")
    assert isinstance(missing.value, errors.JobNotFound)
    assert "job_doesnotexist" in str(missing.value)
    with pytest.raises(errors.ValidationFailed) as invalid:
        client.jobs.submit("")
    assert invalid.value.details["detail"][0]["loc"][-1] == "command"
    with pytest.raises(errors.ValidationFailed):
        client.jobs.submit("true", gpus=-1)

    with jobyard.Client(server.url, "jy_not_a_key") as bad, pytest.raises(errors.Unauthorized):
        bad.jobs.get(job.id)
    url = f"http://127.0.0.1:{free_port()}"
    with jobyard.Client(url, "jy_x") as down, pytest.raises(ConnectionFailed, match=url):
        down.me()


async def test_async_client(server: ServerProcess) -> None:
    tag = _tag()
    async with jobyard.AsyncClient(server.url, server.admin_key) as client:
        job = await client.jobs.submit(["sh", "-c", "echo a; echo b"], tags=[tag])
        texts = [line.text async for line in client.jobs.logs(job.id, follow=True)]
        assert texts == ["a", "b"]
        states = [e.state async for e in client.jobs.stream(job.id) if e.kind == "state"]
        assert states[0] == "queued" and states[-1] == "completed"
        done = await client.jobs.wait(job.id, timeout=20)
        assert done.state == "completed" and done.exit_code == 0
        page = await client.jobs.logs(job.id, tail=1)
        assert [ln.text for ln in page.lines] == ["b"] and page.eof

        second = await client.jobs.submit("echo c", tags=[tag])
        assert [j.id async for j in client.jobs.list(tag=tag, limit=1)] == [second.id, job.id]
        await client.jobs.wait(second.id, timeout=20)
        with pytest.raises(errors.Conflict):
            await client.jobs.cancel(second.id)
        with pytest.raises(errors.NotFound):
            await client.jobs.get("job_doesnotexist")
        assert (await client.me()).is_admin


def test_typed_jobs_carry_progress_cost_and_webhook(server):

    from jobyard import Client

    code = ("import jobyard.job as j; j.progress(40, step='half', metadata={'n': 4}); "
            "j.flush(); import time; time.sleep(0.5)")
    with Client(server.url, server.admin_key) as client:
        job = client.jobs.submit(["python3", "-c", code],
                                 webhook={"url": "https://hooks.example.com/x",
                                          "events": ["completed"]})
        done = client.jobs.wait(job.id, timeout=30)
    assert done.state == "completed"
    assert done.progress == 40 and done.current_step == "half" and done.metadata == {"n": 4}
    assert done.cost is not None and done.cost["total"] == done.cost["accrued"]
    assert done.webhook == {"url": "https://hooks.example.com/x", "events": ["job.completed"]}


def test_submit_on_a_cluster_that_does_not_exist_is_not_found(server):
    import pytest

    from jobyard import Client, NotFound

    with Client(server.url, server.admin_key) as client, pytest.raises(NotFound):
        client.jobs.submit("true", cluster_id="cl_nope")


def test_pause_and_resume(client: jobyard.Client) -> None:
    job = client.jobs.submit(["sh", "-c", "while :; do echo tick; sleep 0.05; done"],
                             tags=[_tag()])
    wait_until(lambda: client.jobs.get(job.id).state == "running", timeout=20)
    paused = client.jobs.pause(job.id)
    assert paused.state == "paused" and isinstance(paused.paused_at, datetime)
    assert client.jobs.pause(job).state == "paused"  # again: 200, no error
    resumed = client.jobs.resume(job.number)
    assert resumed.state == "running" and resumed.paused_at is None and resumed.paused_s > 0
    assert client.jobs.resume(job.id).state == "running"
    client.jobs.cancel(job.id)
    done = client.jobs.wait(job.id, timeout=20)
    with pytest.raises(errors.Conflict) as conflict:
        client.jobs.pause(done.id)
    assert conflict.value.status == 409 and "canceled" in str(conflict.value)
    with pytest.raises(errors.Conflict):
        client.jobs.resume(done.id)


async def test_async_pause_and_resume(server: ServerProcess) -> None:
    async with jobyard.AsyncClient(server.url, server.admin_key) as client:
        job = await client.jobs.submit("sleep 30", tags=[_tag()])
        with jobyard.Client(server.url, server.admin_key) as sync:
            await async_wait_until(lambda: sync.jobs.get(job.id).state == "running", timeout=20)
        assert (await client.jobs.pause(job.id)).state == "paused"
        assert (await client.jobs.resume(job.id)).state == "running"
        await client.jobs.cancel(job.id)
        done = await client.jobs.wait(job.id, timeout=20)
        with pytest.raises(errors.Conflict):
            await client.jobs.pause(done.id)
        with pytest.raises(errors.NotFound):
            await client.jobs.resume("job_doesnotexist")
