from collections.abc import Iterator

import pytest

from jobyard.store import migrate
from jobyard.store.engine import Engines, make_engines
from jobyard.store.sql import SqlStore
from tests.conftest import BACKENDS, drop_pg_database, pg_database


@pytest.fixture(params=BACKENDS)
def engines(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engines]:
    if request.param == "sqlite":
        engines = make_engines(f"sqlite:///{tmp_path / 'store.db'}")
        yield engines
        engines.dispose()
        return
    url, admin, name = pg_database()
    engines = make_engines(url)
    yield engines
    engines.dispose()
    drop_pg_database(admin, name)


@pytest.fixture
def store(engines: Engines) -> SqlStore:
    migrate.upgrade(engines.write)
    changed: list[int] = []
    s = SqlStore(engines, on_change=changed.extend)
    s.changed = changed  # type: ignore[attr-defined]
    return s
