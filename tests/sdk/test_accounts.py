"""Orgs, users and API keys through the SDK, against a real server."""

from __future__ import annotations

import uuid

import pytest

import jobyard
from jobyard import errors
from jobyard.testing import ServerProcess


def test_orgs_users_keys_and_revocation(server: ServerProcess) -> None:
    suffix = uuid.uuid4().hex[:8]
    org_name, username = f"org-{suffix}", f"user-{suffix}"
    with jobyard.Client(server.url, server.admin_key) as admin:
        me = admin.me()
        assert me.is_admin and me.username

        org = admin.orgs.create(org_name)
        assert org.name == org_name and org.id is not None
        assert org_name in [o.name for o in admin.orgs.list()]
        with pytest.raises(errors.Conflict):
            admin.orgs.create(org_name)

        user = admin.users.create(username, org_name)
        assert (user.username, user.org, user.is_admin) == (username, org_name, False)
        assert username in [u.username for u in admin.users.list()]
        with pytest.raises(errors.ValidationFailed):
            admin.users.create(f"x-{suffix}", "no-such-org")

        key = admin.keys.create(name="laptop", username=username)
        assert key.key and key.key.startswith("jy_") and key.prefix and key.user_id == user.id
        assert key.id in [k.id for k in admin.keys.list()]
        assert [k.id for k in admin.keys.list(username=username)] == [key.id]
        assert all(k.key is None for k in admin.keys.list())  # the secret is shown once
        admin_job = admin.jobs.submit("true")

        with jobyard.Client(server.url, key.key) as bob:
            assert bob.me().username == username
            with pytest.raises(errors.Forbidden):
                bob.users.list()
            with pytest.raises(errors.Forbidden):
                bob.keys.create(username=me.username)
            with pytest.raises(errors.NotFound):  # another org's job: nothing to see
                bob.jobs.get(admin_job.id)
            own = bob.keys.create()
            assert [k.id for k in bob.keys.list()] == [key.id, own.id]

            revoked = admin.keys.revoke(key.id)
            assert revoked.id == key.id and revoked.revoked_at is not None
            with pytest.raises(errors.Unauthorized):
                bob.me()
        with jobyard.Client(server.url, own.key) as bob2:
            assert bob2.me().username == username
            bob2.keys.revoke(own.id)  # a user may revoke their own key
            with pytest.raises(errors.Unauthorized):
                bob2.jobs.list_page()


async def test_async_accounts(server: ServerProcess) -> None:
    suffix = uuid.uuid4().hex[:8]
    async with jobyard.AsyncClient(server.url, server.admin_key) as admin:
        await admin.orgs.create(f"aorg-{suffix}")
        user = await admin.users.create(f"auser-{suffix}", f"aorg-{suffix}", is_admin=True)
        assert user.is_admin and user.username in [u.username for u in await admin.users.list()]
        assert f"aorg-{suffix}" in [o.name for o in await admin.orgs.list()]
        key = await admin.keys.create(username=user.username)
        assert key.id in [k.id for k in await admin.keys.list(username=user.username)]
        await admin.keys.revoke(key.id)
    async with jobyard.AsyncClient(server.url, key.key) as gone:
        with pytest.raises(errors.Unauthorized):
            await gone.me()
