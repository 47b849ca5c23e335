"""Every SQLite/PostgreSQL difference lives here: URLs, pragmas, write locking."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we ship)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True)
class Engines:
    """A read engine and a write engine (the same object on PostgreSQL).

    SQLite writers take the database lock up front (``BEGIN IMMEDIATE``) so two writers queue
    on ``busy_timeout`` instead of failing with "database is locked" when one upgrades a read
    lock; readers use plain deferred transactions and, in WAL mode, never wait for a writer.
    """

    read: sa.Engine
    write: sa.Engine
    is_sqlite: bool

    def dispose(self) -> None:
        self.read.dispose()
        if self.write is not self.read:
            self.write.dispose()


def make_engines(url: str) -> Engines:
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        return Engines(read=engine, write=engine, is_sqlite=False)
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    read = _sqlite_engine(url, immediate=False)
    write = _sqlite_engine(url, immediate=True)
    return Engines(read=read, write=write, is_sqlite=True)


def _sqlite_engine(url: str, immediate: bool) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across process crashes
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
