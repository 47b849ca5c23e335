"""The SQLite engines: a store no other OS user can read."""

from __future__ import annotations

import os
import stat

import sqlalchemy as sa

from jobyard.store.engine import make_engines


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_store_and_its_journal_files_are_private(tmp_path):
    path = tmp_path / "jobyard.db"
    engines = make_engines(f"sqlite:///{path}", 5.0)
    try:
        with engines.write.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert (tmp_path / "jobyard.db-wal").exists()
        for name in ("jobyard.db", "jobyard.db-wal", "jobyard.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        engines.write.dispose()
        engines.read.dispose()


def test_an_existing_store_is_made_private(tmp_path):
    path = tmp_path / "jobyard.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    engines = make_engines(f"sqlite:///{path}", 5.0)
    engines.write.dispose()
    engines.read.dispose()
    assert mode(path) == 0o600
