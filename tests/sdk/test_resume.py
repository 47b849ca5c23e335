"""How the SDK resumes SSE streams after a dropped connection (pure logic, no server)."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import ServerSentEvent

from jobyard.sdk import ConnectionFailed
from jobyard.sdk.jobs import EventFollow, LogFollow


def _sse(event: str, data: dict, id: str = "") -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data), id=id)


def test_log_follow_resumes_after_the_last_line_and_stops_at_end() -> None:
    plan = LogFollow("job_x", offset=0)
    assert plan.path == "/v1/jobs/job_x/logs"
    assert plan.request() == ({"offset": 0, "follow": "true"}, {})
    line = plan.handle(_sse("line", {"n": 0, "text": "a", "stream": "stdout"}, "0"))
    assert line is not None and line.text == "a"
    assert plan.request()[0]["offset"] == 1  # a reconnect starts after what was seen
    assert plan.handle(_sse("line", {"n": 0, "text": "a"}, "0")) is None  # no duplicates
    assert not plan.done
    assert plan.handle(_sse("end", {"state": "completed"})) is None
    assert plan.done and plan.end_state == "completed"


def test_event_follow_sends_last_event_id_and_gives_up_without_progress() -> None:
    plan = EventFollow(7, last_event_id=None)
    assert plan.request() == ({}, {})
    event = plan.handle(_sse("state", {"state": "running", "job_id": 7}, "3"))
    assert event is not None and event.state == "running" and not plan.done
    assert plan.request() == ({}, {"Last-Event-ID": "3"})
    assert plan.probe() is not None and plan.probe().path == "/v1/jobs/7"

    # Quiet streams reconnect at once; failures back off, then give up naming the URL.
    assert plan.lost(httpx.ReadTimeout("quiet"), "http://h") == 0.0
    delays = [plan.lost(httpx.ConnectError("refused"), "http://h") for _ in range(5)]
    assert delays == sorted(delays) and delays[-1] <= 2.0
    with pytest.raises(ConnectionFailed, match="http://h/v1/jobs/7/events"):
        plan.lost(None, "http://h")

    plan.handle(_sse("state", {"state": "completed"}, "4"))  # progress resets the count
    assert plan.done and plan.lost(None, "http://h") > 0
