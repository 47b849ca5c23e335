"""Log follow and event streams over SSE."""

import json

import httpx

from tests.api.helpers import submit, wait_state


def sse(client: httpx.Client, url: str, headers=None, timeout=20, comments=None):
    events, current = [], {}
    with client.stream("GET", url, headers=headers or {}, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            if line.startswith(":"):
                if comments is not None:
                    comments.append(line)
                continue
            field, _, value = line.partition(":")
            current[field] = value.lstrip(" ")
    return events


def test_follow_streams_lines_until_the_job_ends(api):
    job = submit(api, "for i in 1 2 3; do echo line $i; sleep 0.2; done")
    events = sse(api, f"/v1/jobs/{job['id']}/logs?follow=true")
    lines = [json.loads(e["data"])["text"] for e in events if e.get("event") == "line"]
    assert lines == ["line 1", "line 2", "line 3"]
    assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["state"] == "completed"


def test_events_stream_is_resumable_and_closes_after_the_end(api):
    job = submit(api, "sleep 0.3")
    events = sse(api, f"/v1/jobs/{job['id']}/events")
    all_ids = [int(e["id"]) for e in events]
    assert all_ids == sorted(all_ids)
    events = [e for e in events if e["event"] == "state"]  # other kinds: metrics, progress...
    states = [json.loads(e["data"])["state"] for e in events]
    assert states == ["queued", "launching", "running", "completed"]
    ids = [int(e["id"]) for e in events]
    rest = sse(api, f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(ids[1])})
    rest = [e for e in rest if e["event"] == "state"]
    assert [json.loads(e["data"])["state"] for e in rest] == ["running", "completed"]
    wait_state(api, job["id"])
    last = {"Last-Event-ID": str(all_ids[-1])}
    assert sse(api, f"/v1/jobs/{job['id']}/events", headers=last) == []


def test_idle_streams_get_heartbeat_comments(api):
    job = submit(api, "sleep 1.5")  # the test server beats every 0.5 s
    comments: list[str] = []
    events = sse(api, f"/v1/jobs/{job['id']}/events", comments=comments)
    assert json.loads(events[-1]["data"])["state"] == "completed"
    assert comments and all(c.startswith(": ping") for c in comments), comments
