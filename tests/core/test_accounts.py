"""AccountService's rules (core/accounts.py): keys, admin-only changes, webhook settings,
SSH keys, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from jobyard import ids
from jobyard.core.accounts import AccountService, parse_public_key
from jobyard.core.cost import Prices
from jobyard.core.inputs import (
    AddSshKey,
    CreateKey,
    CreateUser,
    SetBudget,
    SetWebhook,
    SubmitJob,
)
from jobyard.core.jobs import JobService
from jobyard.core.models import Resources
from jobyard.core.ports import Transition
from jobyard.core.states import JobState
from jobyard.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from tests.core.conftest import Clock

# ssh-keygen -t ed25519 -C ann@laptop, and what `ssh-keygen -lf` printed for it
ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZvH9/kyHYqeJbvRbAJe+inHpjIc/9P6PMWbt2ZGcGh "
           "ann@laptop")
FINGERPRINT = "SHA256:igt6L4ii79Ydsca42+VcYqOQ3UUmP1ZZVGk/+68+bcU"


def no_private_networks(url: str) -> str | None:
    return "private" if "10.0.0.1" in url else None


@pytest.fixture
def accounts(any_store: Any, clock: Clock) -> AccountService:
    prices = Prices(gpu_hour=0.0, cpu_hour=3600.0)  # a CPU-second costs 1
    return AccountService(any_store.accounts, any_store.webhooks, None,  # type: ignore[arg-type]
                          any_store.telemetry, prices, no_private_networks, clock=clock)






def test_a_key_is_its_owner_until_revoked(accounts, ann):
    with pytest.raises(Unauthorized):
        accounts.authenticate(None)
    with pytest.raises(Unauthorized):
        accounts.authenticate("jy_not_a_key")
    row = accounts.create_key(ann, CreateKey("ci"))
    assert row["key"].startswith("jy_") and row["prefix"] == row["key"][:10]
    who = accounts.authenticate(row["key"])
    assert (who.user_id, who.key_id) == (ann.user_id, row["id"])
    accounts.revoke_key(ann, row["id"])
    with pytest.raises(Unauthorized):
        accounts.authenticate(row["key"])


def test_orgs_users_and_other_peoples_keys_are_admin_business(accounts, ann, root, amy):
    for change in (lambda: accounts.create_org(ann, "new"), lambda: accounts.list_orgs(ann),
                   lambda: accounts.create_user(ann, CreateUser("eve", "lab")),
                   lambda: accounts.list_users(ann),
                   lambda: accounts.create_key(ann, CreateKey("x", username="amy"))):
        with pytest.raises(Forbidden):
            change()
    assert accounts.create_org(root, "new")["name"] == "new"
    assert accounts.create_user(root, CreateUser("eve", "new"))["org"] == "new"
    with pytest.raises(ValidationFailed):
        accounts.create_key(root, CreateKey("x", username="nobody"))
    key = accounts.create_key(root, CreateKey("for amy", username="amy"))
    assert accounts.authenticate(key["key"]).user_id == amy.user_id


def test_each_sees_and_revokes_only_their_keys_an_admin_all(accounts, ann, amy, root):
    amys = accounts.create_key(amy, CreateKey("amy's"))
    assert {k["user_id"] for k in accounts.list_keys(ann)} == {ann.user_id}
    assert {k["id"] for k in accounts.list_keys(root, "amy")} >= {amys["id"]}
    with pytest.raises(NotFound):
        accounts.list_keys(root, "nobody")
    with pytest.raises(NotFound):
        accounts.revoke_key(ann, amys["id"])
    assert accounts.revoke_key(root, amys["id"])["revoked_at"] is not None


def test_the_default_webhook_is_checked_and_keeps_its_secret(accounts, ann):
    with pytest.raises(ValidationFailed) as refused:
        accounts.set_webhook(ann, SetWebhook("http://10.0.0.1/hook", ("job.completed",)))
    assert refused.value.details["loc"] == ["body", "url"]
    first = accounts.webhook(ann)
    assert first["url"] is None and first["secret"].startswith("whsec_")
    set_ = accounts.set_webhook(ann, SetWebhook("https://example.com/hook", ("job.failed",)))
    assert set_ == {"url": "https://example.com/hook", "events": ["job.failed"],
                    "secret": first["secret"]}
    cleared = accounts.set_webhook(ann, SetWebhook(None, ("job.failed",)))
    assert cleared["url"] is None and cleared["events"] is None
    assert accounts.rotate_webhook_secret(ann)["secret"] != first["secret"]


def test_ssh_keys_are_checked_and_removed_only_by_their_owner(accounts, ann, amy, bob, root):
    for bad in ("-----BEGIN OPENSSH PRIVATE KEY-----", ED25519 + "\n" + ED25519,
                "ssh-dss AAAA", "ssh-ed25519 not*base64", "ssh-rsa " + ED25519.split()[1]):
        with pytest.raises(BadRequest):
            accounts.add_ssh_key(ann, AddSshKey(bad))
    key = accounts.add_ssh_key(ann, AddSshKey(ED25519))
    assert (key.name, key.key_type) == ("ann@laptop", "ssh-ed25519")
    assert key.fingerprint == parse_public_key(ED25519)[3] == FINGERPRINT
    with pytest.raises(Conflict):
        accounts.add_ssh_key(ann, AddSshKey(ED25519, "again"))
    assert [k["uid"] for k in accounts.ssh_keys(amy, whole_org=True)] == [key.uid]
    assert accounts.ssh_keys(amy) == []
    with pytest.raises(NotFound):
        accounts.remove_ssh_key(bob, key.uid)
    with pytest.raises(Forbidden):
        accounts.remove_ssh_key(amy, key.uid)
    assert accounts.remove_ssh_key(root, key.uid)["uid"] == key.uid
    with pytest.raises(NotFound):
        accounts.remove_ssh_key(ann, key.uid)


def test_budgets_are_set_by_admins_and_count_ended_and_running_jobs(accounts, any_store, ann,
                                                                    bob, root, clock):
    with pytest.raises(Forbidden):
        accounts.set_budget(ann, SetBudget("user", "ann", 10.0))
    with pytest.raises(NotFound):
        accounts.set_budget(root, SetBudget("user", "nobody", 10.0))
    assert accounts.set_budget(root, SetBudget("user", "ann", 10.0))["budget"] == 10.0
    jobs = JobService(any_store.jobs, any_store.kv, Resources(0, 8, 0), clock=clock)
    ended, _ = jobs.submit(ann, SubmitJob(command="true"))
    running, _ = jobs.submit(ann, SubmitJob(command="sleep 9"))
    for job_id, states in ((ended.id, [JobState.LAUNCHING, JobState.RUNNING,
                                       JobState.COMPLETED]),
                           (running.id, [JobState.LAUNCHING, JobState.RUNNING])):
        for state in states:
            telemetry = {"total_cost": 2.5} if state is JobState.COMPLETED else None
            any_store.jobs.apply([Transition(job_id, state, {}, telemetry=telemetry)])
    clock.now += 4  # the running job has accrued 4 CPU-seconds
    view = accounts.budget(ann, "user", "ann")
    assert view == {"scope": "user", "name": "ann", "budget": 10.0, "spent": 6.5,
                    "remaining": 3.5, "currency": "USD"}
    with pytest.raises(NotFound):  # another user's budget reads as unknown
        accounts.budget(bob, "user", "ann")
    assert accounts.budget(root, "user", "ann")["spent"] == 6.5


def test_keys_are_stored_only_as_hashes(any_store, ann):
    assert all("key_hash" not in k and "key" not in k
               for k in any_store.accounts.list_keys(ann.user_id))
    assert any_store.accounts.principal_for_key(ids.hash_key("jy_unknown")) is None
