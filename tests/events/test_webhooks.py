"""Webhooks below the API: signing, event filters, retry schedule, target policy, the outbox
and the delivery worker (against a real receiver on loopback)."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from jobyard.config import Config
from jobyard.core import webhooks as core_wh
from jobyard.core.ports import NewJob, Transition
from jobyard.core.states import JobState
from jobyard.events import webhooks as wh
from jobyard.events.delivery import DeliveryWorker, TargetRefused, pinned_request
from jobyard.store import migrate
from jobyard.store.sql import SqlStore
from tests.daemon.test_outcome import make_job
from tests.events.receiver import Receiver

# The test vector published with the Standard Webhooks specification.
VECTOR = {
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": 1614265330,
    "body": b'{"test": 2432232314}',
    "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
LOOPBACK = wh.parse_networks(["127.0.0.0/8"])


# signing ---------------------------------------------------------------------------------------
def test_signature_matches_the_published_test_vector():
    headers = wh.sign_headers(VECTOR["secret"], VECTOR["id"], VECTOR["timestamp"], VECTOR["body"])
    assert headers == {
        "webhook-id": VECTOR["id"],
        "webhook-timestamp": str(VECTOR["timestamp"]),
        "webhook-signature": VECTOR["signature"],
    }


def test_a_fresh_signature_verifies_and_a_tampered_body_does_not():
    secret = core_wh.new_secret()
    assert secret.startswith("whsec_") and secret != core_wh.new_secret()
    body = b'{"type": "job.completed"}'
    headers = wh.sign_headers(secret, "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type": "job.failed"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(core_wh.new_secret()).verify(body, headers)


# event types and filters -----------------------------------------------------------------------
def test_event_types_and_filters_accept_both_spellings():
    assert core_wh.event_type("state", {"to": "completed"}) == "job.completed"
    assert core_wh.event_type("state", {"to": "error"}) == core_wh.event_type("state",
                                                                              {"to": "failed"})
    assert core_wh.event_type("progress", {"progress": 5}) == "job.progress"
    assert core_wh.event_type("metrics", {}) is None
    assert core_wh.normalize_events(["completed", "job.failed", "failed"]) == [
        "job.completed", "job.failed"]
    assert core_wh.normalize_events(None) == ["job.canceled", "job.completed", "job.failed",
                                         "job.timeout"]
    assert core_wh.normalize_events(["progress", "*"]) == ["*"]
    with pytest.raises(ValueError, match="done"):
        core_wh.normalize_events(["done"])
    assert core_wh.wants(["*"], "job.progress") and not core_wh.wants(None, "job.progress")


# retry schedule --------------------------------------------------------------------------------
def test_default_schedule_retries_for_more_than_a_day():
    schedule = Config().webhook_retry_schedule_s
    assert sum(schedule) >= 24 * 3600
    assert all(a <= b for a, b in itertools.pairwise(schedule))


def test_retry_times_follow_the_schedule_then_stop(store):
    worker = DeliveryWorker(store.webhooks, [1, 10, 100])
    assert [worker.retry_at(n, 1000.0) for n in (1, 2, 3, 4)] == [1001.0, 1010.0, 1100.0, None]


# where a webhook may point ---------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "http://10.0.0.1/x", "http://192.168.1.20/x", "http://172.16.0.1/x", "http://127.0.0.1/x",
    "http://localhost:9000/x", "http://api.localhost/x", "http://169.254.169.254/latest",
    "http://[::1]/x", "http://[fd00::1]/x", "http://[::ffff:10.0.0.1]/x", "http://0.0.0.0/x",
    "http://2130706433/x", "http://0x7f.1/x", "http://224.0.0.1/x", "http://100.64.0.1/x",
    "ftp://example.com/x", "http:///x", "http://user:pw@example.com/x",
])
def test_private_and_malformed_targets_are_refused(url):
    assert wh.url_problem(url) is not None


def test_allowed_networks_and_public_names_pass():
    assert wh.url_problem("https://hooks.example.com/jobyard") is None
    assert wh.url_problem("http://93.184.216.34:8080/x") is None
    assert wh.url_problem("http://127.0.0.1:9/x", LOOPBACK) is None
    assert wh.url_problem("http://10.1.2.3/x", LOOPBACK) is not None
    assert wh.url_checker(["::1/128"])("http://[::1]/x") is None


async def test_every_resolved_address_is_checked_and_the_connection_pinned():
    async def two_faced(host, port):
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(TargetRefused, match=r"10\.0\.0\.7"):
        await pinned_request("https://hooks.example.com/x", [], two_faced)

    async def public(host, port):
        return ["93.184.216.34"]

    url, headers, ext = await pinned_request("https://hooks.example.com:8443/x?a=1", [], public)
    assert str(url) == "https://93.184.216.34:8443/x?a=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert ext == {"sni_hostname": "hooks.example.com"}
    allowed = [ipaddress.ip_network("10.0.0.0/8")]
    url, _, ext = await pinned_request("http://internal.example/x", allowed,
                                       lambda h, p: asyncio.sleep(0, ["10.0.0.7"]))
    assert url.host == "10.0.0.7" and ext == {}


# the outbox ------------------------------------------------------------------------------------
@pytest.fixture
def store(engines) -> SqlStore:
    migrate.upgrade(engines.write)
    return SqlStore(engines)


def _owner(store: SqlStore) -> dict:
    store.accounts.create_org("acme")
    return store.accounts.create_user("ann", "acme")


def _job(store: SqlStore, user: dict, uid: str, webhook: dict | None = None):
    job = make_job(state=JobState.QUEUED)
    job.user_id, job.org_id, job.uid, job.webhook = user["id"], user["org_id"], uid, webhook
    return store.jobs.create_job(NewJob(job))[0]


def _run(store: SqlStore, job_id: int, *states: JobState) -> None:
    for state in states:
        [result] = store.jobs.apply([Transition(job_id, state, {})])
        assert not isinstance(result, Exception), result


def test_matching_events_are_queued_with_the_event_in_one_write(store):
    user = _owner(store)
    nudges: list[int] = []
    store.webhooks.add_outbox_listener(lambda: nudges.append(1))
    hook = {"url": "https://hooks.example.com/a", "events": ["job.running", "job.completed"]}
    job = _job(store, user, "job_a", hook)
    assert not nudges  # the queued event is not wanted: nothing written, nobody woken
    _run(store, job.id, JobState.LAUNCHING, JobState.RUNNING)
    [result] = store.jobs.apply([Transition(job.id, JobState.COMPLETED, {"exit_code": 0},
                                       telemetry={"efficiency": {"gpu_util": 0.9}})])
    assert not isinstance(result, Exception)
    rows = store.webhooks.job_deliveries(job.id)
    assert [r["event_type"] for r in rows] == ["job.running", "job.completed"]
    events = {e.id: e for e in store.jobs.events(job.id)}
    assert all(events[r["event_id"]].kind == "state" for r in rows)
    final = rows[-1]["payload"]
    assert final["type"] == "job.completed" and final["data"]["job"]["id"] == "job_a"
    assert final["data"]["telemetry"] == {"efficiency": {"gpu_util": 0.9}}
    assert "telemetry" not in rows[0]["payload"]["data"]
    assert {r["status"] for r in rows} == {"pending"} and len(nudges) >= 1


def test_the_owners_default_applies_to_jobs_without_their_own(store):
    user = _owner(store)
    none = _job(store, user, "job_none")
    assert store.webhooks.job_deliveries(none.id) == []
    settings = store.webhooks.set_user_webhook(user["id"], "https://hooks.example.com/d",
                                      ["job.queued", "job.progress"])
    assert settings["secret"].startswith("whsec_")
    job = _job(store, user, "job_d")
    own = _job(store, user, "job_own", {"url": "https://own.example.com/", "events": ["*"]})
    _run(store, job.id, JobState.LAUNCHING, JobState.RUNNING)
    store.jobs.merge_telemetry(job.id, {"progress": {"percent": 40}}, event="progress")
    assert [(r["event_type"], r["url"]) for r in store.webhooks.job_deliveries(job.id)] == [
        ("job.queued", "https://hooks.example.com/d"),
        ("job.progress", "https://hooks.example.com/d")]
    assert [r["url"] for r in store.webhooks.job_deliveries(own.id)] == ["https://own.example.com/"]
    # Clearing the default keeps the secret; later jobs get no deliveries.
    cleared = store.webhooks.set_user_webhook(user["id"], None, [])
    assert cleared["url"] is None and cleared["secret"] == settings["secret"]
    later = _job(store, user, "job_later")
    assert store.webhooks.job_deliveries(later.id) == []
    rotated = store.webhooks.rotate_webhook_secret(user["id"])
    assert rotated["secret"] != settings["secret"]
    assert store.webhooks.user_webhook(user["id"]) == rotated


def test_attempts_are_logged_until_delivered_or_given_up(store):
    user = _owner(store)
    job = _job(store, user, "job_r", {"url": "https://hooks.example.com/", "events": ["*"]})
    [row] = store.webhooks.job_deliveries(job.id)
    [due] = store.webhooks.due_deliveries(time.time())
    assert due.id == row["id"] and due.secret is None
    assert store.webhooks.due_deliveries(time.time(), skip={due.id}) == []
    store.webhooks.record_attempt(due.id, {"ts": 1.0, "status": 500, "error": "HTTP 500"},
                                  False, 50.0)
    assert store.webhooks.due_deliveries(49.0) == []
    assert len(store.webhooks.due_deliveries(50.0)) == 1
    store.webhooks.record_attempt(due.id, {"ts": 2.0, "status": 204, "error": None}, True, None)
    [done] = store.webhooks.job_deliveries(job.id)
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert [e["status"] for e in done["log"]] == [500, 204] and done["delivered_at"] == 2.0
    other = _job(store, user, "job_f", {"url": "https://hooks.example.com/", "events": ["*"]})
    [row] = store.webhooks.job_deliveries(other.id)
    store.webhooks.record_attempt(row["id"], {"ts": 3.0, "status": None, "error": "refused"},
                                  False, None)
    assert store.webhooks.job_deliveries(other.id)[0]["status"] == "failed"
    assert store.webhooks.due_deliveries(time.time()) == []


# the worker ------------------------------------------------------------------------------------
async def _until(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (value := await asyncio.to_thread(predicate)):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return value


async def test_worker_retries_until_the_receiver_accepts_and_signs_each_attempt(store):
    user = _owner(store)
    receiver = Receiver(statuses=[500, 503]).start()
    try:
        worker = DeliveryWorker(store.webhooks, [0.05, 0.1, 5], allowed=LOOPBACK, poll_s=0.05)
        task = asyncio.create_task(worker.run())
        job = _job(store, user, "job_w", {"url": receiver.url + "/w", "events": ["*"]})
        row = await _until(lambda: [r for r in store.webhooks.job_deliveries(job.id)
                                    if r["status"] == "delivered"])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        receiver.stop()
    assert [e["status"] for e in row[0]["log"]] == [500, 503, 204]
    secret = store.webhooks.user_webhook(user["id"])["secret"]
    messages = receiver.at("/w")
    assert len(messages) == 3 and len({m.headers["webhook-id"] for m in messages}) == 1
    for message in messages:
        assert Webhook(secret).verify(message.body, message.headers)["type"] == "job.queued"


async def test_worker_gives_up_at_once_on_a_refused_address(store):
    user = _owner(store)

    async def private(host, port):
        return ["10.9.8.7"]

    worker = DeliveryWorker(store.webhooks, [0.05], poll_s=0.05, resolver=private)
    task = asyncio.create_task(worker.run())
    job = _job(store, user, "job_p", {"url": "https://rebinding.example/", "events": ["*"]})
    [row] = await _until(lambda: [r for r in store.webhooks.job_deliveries(job.id)
                                  if r["status"] == "failed"])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert row["attempts"] == 1 and "10.9.8.7" in row["last_error"]
