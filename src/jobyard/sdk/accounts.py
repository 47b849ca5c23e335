"""Accounts in the SDK: who a key belongs to (``client.me()``), and ``client.users``,
``client.orgs`` and ``client.keys`` (blocking and asyncio). Users and orgs are admin-only; a
user manages their own keys, an admin anyone's.

>>> client.orgs.create("research")
>>> client.users.create("ada", "research")
>>> client.keys.create(name="laptop", username="ada").key   # the only time it is shown
'jy_...'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobyard.sdk.calls import Call, clean, listing, segment
from jobyard.sdk.models import _Model

if TYPE_CHECKING:
    from jobyard.sdk.client import AsyncClient, Client

__all__ = ["ApiKey", "AsyncKeys", "AsyncOrgs", "AsyncUsers", "KeyCalls", "Keys", "Me", "Org",
           "OrgCalls", "Orgs", "User", "UserCalls", "Users"]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class Me(_Model):
    user_id: int
    username: str
    org_id: int | None = None
    is_admin: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class User(_Model):
    username: str
    id: int | None = None
    org_id: int | None = None
    org: str | None = None
    is_admin: bool = False
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Org(_Model):
    name: str
    id: int | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ApiKey(_Model):
    """An API key's metadata; ``key`` (the secret) is set only in the answer to create."""

    id: int | str
    name: str | None = None
    prefix: str | None = None
    user_id: int | None = None
    username: str | None = None
    key: str | None = field(default=None, repr=False)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# --------------------------------------------------------------------------- calls


class UserCalls:
    """Request building and answer parsing for /v1/me and /v1/users."""

    @staticmethod
    def me() -> Call[Me]:
        return Call("GET", "/v1/me", lambda r: Me.from_dict(r.json()))

    @staticmethod
    def create(username: str, org: str, is_admin: bool) -> Call[User]:
        body = {"username": username, "org": org, "is_admin": is_admin}
        return Call("POST", "/v1/users", lambda r: User.from_dict(r.json()), json=body)

    @staticmethod
    def list() -> Call[list[User]]:
        return Call("GET", "/v1/users", lambda r: [User.from_dict(u) for u in listing(r)])


class OrgCalls:
    """Request building and answer parsing for /v1/orgs."""

    @staticmethod
    def create(name: str) -> Call[Org]:
        return Call("POST", "/v1/orgs", lambda r: Org.from_dict(r.json()), json={"name": name})

    @staticmethod
    def list() -> Call[list[Org]]:
        return Call("GET", "/v1/orgs", lambda r: [Org.from_dict(o) for o in listing(r)])


class KeyCalls:
    """Request building and answer parsing for /v1/keys."""

    @staticmethod
    def create(name: str | None, username: str | None) -> Call[ApiKey]:
        body = clean({"name": name, "username": username})
        return Call("POST", "/v1/keys", lambda r: ApiKey.from_dict(r.json()), json=body)

    @staticmethod
    def list(username: str | None) -> Call[list[ApiKey]]:
        return Call("GET", "/v1/keys", lambda r: [ApiKey.from_dict(k) for k in listing(r)],
                    params=clean({"username": username}))

    @staticmethod
    def revoke(key_id: int | str) -> Call[ApiKey]:
        return Call("DELETE", f"/v1/keys/{segment(key_id)}",
                    lambda r: ApiKey.from_dict(r.json()))


# --------------------------------------------------------------------------- namespaces


class Users:
    """``client.users`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return self._c._send(UserCalls.create(username, org, is_admin))

    def list(self) -> list[User]:
        return self._c._send(UserCalls.list())


class Orgs:
    """``client.orgs`` (admin)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str) -> Org:
        return self._c._send(OrgCalls.create(name))

    def list(self) -> list[Org]:
        return self._c._send(OrgCalls.list())


class Keys:
    """``client.keys``: API keys. ``create`` is the only time a secret is returned."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return self._c._send(KeyCalls.create(name, username))

    def list(self, username: str | None = None) -> list[ApiKey]:
        return self._c._send(KeyCalls.list(username))

    def revoke(self, key_id: int | str) -> ApiKey:
        """Revoke a key (own keys; any key for an admin); effective on the next request."""
        return self._c._send(KeyCalls.revoke(key_id))


class AsyncUsers:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, username: str, org: str, is_admin: bool = False) -> User:
        return await self._c._send(UserCalls.create(username, org, is_admin))

    async def list(self) -> list[User]:
        return await self._c._send(UserCalls.list())


class AsyncOrgs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str) -> Org:
        return await self._c._send(OrgCalls.create(name))

    async def list(self) -> list[Org]:
        return await self._c._send(OrgCalls.list())


class AsyncKeys:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str | None = None, username: str | None = None) -> ApiKey:
        return await self._c._send(KeyCalls.create(name, username))

    async def list(self, username: str | None = None) -> list[ApiKey]:
        return await self._c._send(KeyCalls.list(username))

    async def revoke(self, key_id: int | str) -> ApiKey:
        return await self._c._send(KeyCalls.revoke(key_id))
