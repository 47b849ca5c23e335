"""The core's rules tested without HTTP: each service over the in-memory store and, to keep
the two honest, over the SQL store on a SQLite file (the same test, the same answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard import ids
from jobyard.core.models import Job, Principal
from jobyard.store import migrate
from jobyard.store.engine import make_engines
from jobyard.store.memory import InMemoryStore
from jobyard.store.sql import SqlStore


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class RemovedFiles:
    """The JobFiles port's ``remove``, recorded (the rest is not needed by these tests)."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    def remove(self, job: Job) -> None:
        self.removed.append(job.uid)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStore(clock)
        return
    engines = make_engines(f"sqlite:///{tmp_path / 'core.db'}")
    migrate.upgrade(engines.write)
    yield SqlStore(engines, clock=clock)
    engines.dispose()


def add_user(store: Any, username: str, org: str, admin: bool = False) -> Principal:
    """A user (and its org, if new) with a key; returns the key's principal."""
    if store.accounts.org_by_ref(org) is None:
        store.accounts.create_org(org)
    user = store.accounts.create_user(username, org, is_admin=admin)
    secret = ids.api_key()
    store.accounts.create_key(user["id"], ids.hash_key(secret), secret[:10], "test")
    who = store.accounts.principal_for_key(ids.hash_key(secret))
    assert who is not None
    return who


@pytest.fixture
def ann(any_store: Any) -> Principal:
    return add_user(any_store, "ann", "lab")


@pytest.fixture
def amy(any_store: Any) -> Principal:
    """Ann's colleague: the same org."""
    return add_user(any_store, "amy", "lab")


@pytest.fixture
def bob(any_store: Any) -> Principal:
    """Of another org."""
    return add_user(any_store, "bob", "other")


@pytest.fixture
def root(any_store: Any) -> Principal:
    """An admin (of a third org)."""
    return add_user(any_store, "root", "ops", admin=True)
