"""The end-to-end tests' server: one per test, as each kills and restarts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobyard.testing import ServerProcess


@pytest.fixture
def srv(database_url: str, tmp_path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "srv", database_url=database_url,
                           env={"JOBYARD_KILL_GRACE_S": "1"})
    server.start()
    yield server
    server.stop()
