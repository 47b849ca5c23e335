"""A busy, unreachable or full database raises the domain error it stands for, on real
databases: SQLite locked by another process's writer and on a full tmpfs, PostgreSQL with a
row lock held elsewhere and at a port nothing listens on."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
import sqlalchemy as sa

from jobyard.errors import StorageFull, Unavailable
from jobyard.store import faults
from jobyard.store.engine import make_engines
from jobyard.testing import free_port
from tests.conftest import PG_ADMIN_URL, drop_pg_database, fill_disk, pg_database


def insert(value: str):
    return lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": value})


def make_table(engines) -> None:
    engines.write_tx(lambda conn: conn.exec_driver_sql("CREATE TABLE t (v TEXT)"))


def test_a_write_past_the_busy_timeout_is_unavailable_and_then_goes_through(tmp_path):
    path = tmp_path / "busy.db"
    engines = make_engines(f"sqlite:///{path}", busy_timeout_s=0.2)
    try:
        make_table(engines)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        with pytest.raises(Unavailable) as caught:
            engines.write_tx(insert("a"))
        assert caught.value.retry_after == 1
        with engines.read.connect() as conn:  # readers never wait (WAL)
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0
        other.execute("ROLLBACK")
        engines.write_tx(insert("b"))
        with engines.read.connect() as conn:
            assert conn.exec_driver_sql("SELECT v FROM t").scalars().all() == ["b"]
    finally:
        engines.dispose()


def test_a_write_to_a_full_disk_is_storage_full_and_loses_nothing_written(tiny_disk):
    engines = make_engines(f"sqlite:///{tiny_disk / 'full.db'}")
    try:
        make_table(engines)
        engines.write_tx(insert("kept"))
        filler = fill_disk(tiny_disk)
        with pytest.raises(StorageFull) as caught:
            for _ in range(100):  # whatever room the files had is soon gone
                engines.write_tx(insert("x" * 20_000))
        assert caught.value.retry_after
        filler.unlink()
        engines.write_tx(insert("after"))
        with engines.read.connect() as conn:
            values = conn.exec_driver_sql("SELECT v FROM t").scalars().all()
        assert values[0] == "kept" and values[-1] == "after"
    finally:
        engines.dispose()


def test_a_postgresql_lock_timeout_is_unavailable():
    url, admin, name = pg_database()
    engines = make_engines(url)
    try:
        engines.write_tx(lambda conn: conn.exec_driver_sql("CREATE TABLE t (v TEXT)"))
        engines.write_tx(insert("a"))
        with engines.write.connect() as holder:
            holder.exec_driver_sql("SELECT * FROM t FOR UPDATE")  # holds the row lock

            def update(conn):
                conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
                conn.exec_driver_sql("UPDATE t SET v = 'b'")

            with pytest.raises(Unavailable):
                engines.write_tx(update)
            holder.rollback()
        engines.write_tx(update)  # the lock is free: it goes through
    finally:
        engines.dispose()
        drop_pg_database(admin, name)


def test_an_unreachable_postgresql_is_unavailable():
    base = PG_ADMIN_URL.split("@", 1)[0]
    engines = make_engines(f"{base}@127.0.0.1:{free_port()}/nothing")
    try:
        with pytest.raises(Unavailable), engines.read.connect():
            pass
    finally:
        engines.dispose()


@pytest.mark.parametrize(("exc", "expected"), [
    (psycopg.errors.DiskFull("could not extend file"), StorageFull),
    (psycopg.errors.QueryCanceled("statement timeout"), Unavailable),
    (psycopg.errors.AdminShutdown("terminating connection"), Unavailable),
    (psycopg.errors.SerializationFailure("could not serialize"), Unavailable),
    (psycopg.errors.UniqueViolation("duplicate key"), None),
    (sqlite3.IntegrityError("UNIQUE constraint failed"), None),
    (OSError(28, "No space left on device"), StorageFull),
])
def test_which_driver_errors_are_faults(exc, expected):
    """The SQLSTATEs no test can provoke on a healthy server (a full PostgreSQL disk, an
    administrator's shutdown) are named as their class says."""
    fault = faults.translate(exc)
    assert (None if fault is None else type(fault)) is expected
