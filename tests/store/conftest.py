import pytest

from jobyard.store import migrate
from jobyard.store.engine import Engines
from jobyard.store.sql import SqlStore


@pytest.fixture
def store(engines: Engines) -> SqlStore:
    migrate.upgrade(engines.write)
    changed: list[int] = []
    s = SqlStore(engines, on_change=changed.extend)
    s.changed = changed  # type: ignore[attr-defined]
    return s
