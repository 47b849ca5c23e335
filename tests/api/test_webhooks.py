"""Webhooks end to end: a real server sends signed events to a real receiver on loopback."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from jobyard.testing import ServerProcess, wait_until
from tests.api.helpers import submit, wait_state
from tests.events.receiver import Receiver

ENV = {
    "JOBYARD_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
    "JOBYARD_WEBHOOK_RETRY_SCHEDULE_S": "[0.2, 0.4, 0.8, 1.6, 3.2, 6.4]",
    "JOBYARD_WEBHOOK_POLL_INTERVAL_S": "0.2",
}


@pytest.fixture(scope="module")
def srv(database_url, tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("webhooks"), database_url=database_url, env=ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver(srv):  # one per server (backend): paths are reused across backends
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def api(srv):
    with srv.client() as client:
        yield client


@pytest.fixture(scope="module")
def outsider(srv):
    """An API client for a user of another org."""
    with srv.client() as admin:
        assert admin.post("/v1/orgs", json={"name": "elsewhere"}).status_code == 201
        r = admin.post("/v1/users", json={"username": "olga", "org": "elsewhere"})
        assert r.status_code == 201, r.text
        key = admin.post("/v1/keys", json={"name": "k", "username": "olga"}).json()["key"]
    with srv.client(key) as client:
        yield client


def deliveries(api, job_id: str) -> list[dict]:
    r = api.get(f"/v1/jobs/{job_id}/webhooks")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def settled(api, job_id: str) -> list[dict]:
    """The job's deliveries once none is pending."""
    return wait_until(lambda: (items := deliveries(api, job_id))
                      and all(d["status"] != "pending" for d in items) and items, timeout=20)


def test_events_arrive_signed_and_the_signature_verifies(api, receiver):
    secret = api.get("/v1/me/webhook").json()["secret"]
    assert secret.startswith("whsec_")
    job = submit(api, "echo hi", webhook={"url": receiver.url + "/signed"})
    assert wait_state(api, job["id"])["state"] == "completed"
    [message] = receiver.wait("/signed")
    event = Webhook(secret).verify(message.body, message.headers)
    assert event["type"] == "job.completed" and event["data"]["job"]["id"] == job["id"]
    assert event["data"]["job"]["exit_code"] == 0 and "telemetry" in event["data"]
    assert message.headers["webhook-id"].startswith("msg_")
    assert message.headers["webhook-timestamp"].isdigit()
    # Only the terminal event by default: the log (written with each event) has nothing else.
    [d] = settled(api, job["id"])
    assert d["type"] == "job.completed" and d["status"] == "delivered"
    assert d["message_id"] == message.headers["webhook-id"] and d["log"][0]["status"] == 204


def test_the_event_filter_takes_both_spellings(api, receiver):
    hook = {"url": receiver.url + "/filtered", "events": ["running", "job.failed"]}
    bad = submit(api, "exit 3", webhook=hook)
    good = submit(api, "true", webhook={**hook, "url": receiver.url + "/filtered-ok"})
    assert wait_state(api, bad["id"])["state"] == "error"
    assert wait_state(api, good["id"])["state"] == "completed"
    assert [d["type"] for d in settled(api, bad["id"])] == ["job.running", "job.failed"]
    assert [d["type"] for d in settled(api, good["id"])] == ["job.running"]
    types = sorted(m.json["type"] for m in receiver.wait("/filtered", 2))
    assert types == ["job.failed", "job.running"]
    r = api.post("/v1/jobs", json={"command": "true", "webhook": {**hook, "events": ["done"]}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "webhook",
                                                                        "events"]


def test_deliveries_wait_for_a_receiver_that_is_down(api):
    down = Receiver()  # its port is free: nothing listens yet
    job = submit(api, "true", webhook={"url": down.url + "/late", "events": ["completed"]})
    wait_state(api, job["id"])
    failing = wait_until(lambda: [d for d in deliveries(api, job["id"]) if d["attempts"] >= 2],
                         timeout=20)
    assert failing[0]["status"] == "pending" and failing[0]["last_error"]
    down.start()  # back, on the same port
    try:
        [d] = settled(api, job["id"])
        [message] = down.wait("/late")
    finally:
        down.stop()
    assert d["status"] == "delivered" and d["attempts"] >= 3
    *errors, ok = d["log"]
    assert all(e["status"] is None and e["error"] for e in errors) and ok["status"] == 204
    secret = api.get("/v1/me/webhook").json()["secret"]
    assert Webhook(secret).verify(message.body, message.headers)["data"]["job"]["id"] == job["id"]


def test_a_users_default_webhook_and_secret(outsider, receiver):
    r = outsider.put("/v1/me/webhook", json={"url": receiver.url + "/default",
                                             "events": ["completed", "queued"]})
    assert r.status_code == 200, r.text
    settings = r.json()
    assert settings["events"] == ["job.completed", "job.queued"]
    job = submit(outsider, "true")
    wait_state(outsider, job["id"])
    assert [d["type"] for d in settled(outsider, job["id"])] == ["job.queued", "job.completed"]
    for message in receiver.wait("/default", 2):
        Webhook(settings["secret"]).verify(message.body, message.headers)
    rotated = outsider.post("/v1/me/webhook/rotate-secret").json()
    assert rotated["secret"] != settings["secret"] and rotated["url"] == settings["url"]
    cleared = outsider.delete("/v1/me/webhook").json()
    assert cleared == {"url": None, "events": None, "secret": rotated["secret"]}
    quiet = submit(outsider, "true")
    wait_state(outsider, quiet["id"])
    assert deliveries(outsider, quiet["id"]) == []


def test_only_the_owners_org_sees_the_delivery_log(api, outsider, receiver):
    job = submit(api, "true", webhook={"url": receiver.url + "/private-log"})
    wait_state(api, job["id"])
    assert settled(api, job["id"])
    r = outsider.get(f"/v1/jobs/{job['id']}/webhooks")
    assert r.status_code == 404 and r.json()["error"]["code"] == "JOB_NOT_FOUND"


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook", "http://192.168.0.10/hook", "http://169.254.169.254/latest",
    "http://[fd00::1]/hook", "ftp://127.0.0.1/hook",
])
def test_private_targets_are_refused_unless_allowed(api, url):
    r = api.post("/v1/jobs", json={"command": "true", "webhook": {"url": url}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "webhook", "url"]
    r = api.put("/v1/me/webhook", json={"url": url})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]


def test_pending_deliveries_survive_a_server_crash(srv):
    down = Receiver()
    with srv.client() as api:
        job = submit(api, "true", webhook={"url": down.url + "/crash"})
        wait_state(api, job["id"])
        wait_until(lambda: [d for d in deliveries(api, job["id"]) if d["attempts"] >= 1])
    srv.kill()  # SIGKILL: the outbox row is all that is left of the message
    down.start()
    try:
        srv.start()
        with srv.client() as api:
            [d] = settled(api, job["id"])
        [message] = down.wait("/crash")
    finally:
        down.stop()
    assert d["status"] == "delivered" and message.json["data"]["job"]["id"] == job["id"]
