"""Every SQLite/PostgreSQL difference lives here: URLs, pragmas, write locking, and which
driver errors are faults of the machine (:mod:`jobyard.store.faults`)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event

from jobyard.errors import Fenced
from jobyard.store import faults
from jobyard.store.group_commit import GroupCommitter

T = TypeVar("T")


class Fence:
    """A daemon's right to write: the lease ``name`` as long as it holds ``token`` (None:
    it holds none). Set as :data:`FENCE` where the daemon runs, every write transaction
    first reads the lease row ``FOR SHARE``: a holder that lost the lease writes nothing, and
    a takeover (an ``UPDATE`` of that row) waits for the writes in flight."""

    def __init__(self, name: str):
        self.name = name
        self.token: int | None = None

    def check(self, conn: sa.Connection) -> None:
        held = conn.execute(sa.text("SELECT token FROM leases WHERE name = :name FOR SHARE"),
                            {"name": self.name}).scalar()
        if self.token is None or held != self.token:
            raise Fenced(f"the {self.name} lease is no longer ours (token {self.token}, "
                         f"now {held}): write refused")


# The fence of the code running now (the daemon's tasks and threads), None elsewhere.
FENCE: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("jobyard_fence",
                                                                     default=None)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns are encoded and decoded with orjson: several per job change, at hundreds a second.
_JSON_CODEC = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we ship)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True)
class Engines:
    """A read engine and a write engine (the same object on PostgreSQL).

    SQLite writers take the database lock up front (``BEGIN IMMEDIATE``) so a writer from
    another process waits on ``busy_timeout`` instead of failing with "database is locked";
    readers run in autocommit and, in WAL mode, never wait for a writer.
    """

    read: sa.Engine
    write: sa.Engine
    is_sqlite: bool
    # SQLite: all writes of the process go through one writer thread (group commit).
    committer: GroupCommitter | None = None

    def write_tx(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in a write transaction and return its result once committed; under a
        :data:`FENCE`, only while its lease is held (else :class:`~jobyard.errors.Fenced`)."""
        fence = FENCE.get()
        if self.committer is not None:
            return self.committer.run(fn if fence is None else _fenced(fence, fn))
        with self.write.begin() as conn:
            if fence is not None:
                fence.check(conn)
            return fn(conn)

    @property
    def reads_inline(self) -> bool:
        """Whether a read may run on the event loop itself.

        SQLite reads in WAL mode take microseconds and never wait for a writer, so a thread
        hand-off would cost more than the read; PostgreSQL reads cross a socket and go to a thread.
        """
        return self.is_sqlite

    def dispose(self) -> None:
        if self.committer is not None:
            self.committer.close()
        self.read.dispose()
        if self.write is not self.read:
            self.write.dispose()


def make_engines(url: str, busy_timeout_s: float = 30.0) -> Engines:
    """The engines for ``url``. On SQLite a write waits up to ``busy_timeout_s`` for another
    process's lock before it fails as :class:`~jobyard.errors.Unavailable`."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        engine = sa.create_engine(
            url, pool_size=10, max_overflow=10, pool_pre_ping=True, **_JSON_CODEC
        )
        _name_faults(engine)
        return Engines(read=engine, write=engine, is_sqlite=False)
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        private_files(path)
    read = _sqlite_engine(url, busy_timeout_s, writer=False)
    write = _sqlite_engine(url, busy_timeout_s, writer=True)
    return Engines(read=read, write=write, is_sqlite=True, committer=GroupCommitter(write))


def _fenced(fence: Fence, fn: Callable[[sa.Connection], T]) -> Callable[[sa.Connection], T]:
    def checked(conn: sa.Connection) -> T:
        fence.check(conn)
        return fn(conn)

    return checked


def _name_faults(engine: sa.Engine) -> None:
    """Raise a busy, gone or full database as the domain error it stands for."""

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: sa.engine.ExceptionContext) -> None:
        fault = faults.translate(ctx.original_exception, ctx.is_disconnect)
        if fault is not None:
            raise fault from ctx.original_exception


def private_files(path: str) -> None:
    """The store's file and its ``-wal``/``-shm`` readable by this server's user only (key
    hashes, webhook secrets and the server secret are in it). SQLite gives the journal files
    its main file's mode, so a new store is created ``0600`` before SQLite opens it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)


def _sqlite_engine(url: str, busy_timeout_s: float, writer: bool) -> sa.Engine:
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
        pool_size=8,
        max_overflow=8,
        # Readers run in autocommit (no BEGIN): each statement sees one consistent snapshot.
        pool_reset_on_return="rollback" if writer else None,
        **_JSON_CODEC,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across process crashes
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.close()

    _name_faults(engine)

    if writer:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Prepared:
    """A SELECT compiled once and run on a raw driver connection: the hot-read fast path.

    SQLAlchemy's result machinery costs ~10x the query itself for a one-row primary-key read;
    the two reads every API request makes (the caller's key, the job) use this instead. Rows
    come back as namespaces with JSON columns decoded, like SQLAlchemy rows.
    """

    def __init__(self, engine: sa.Engine, stmt: sa.Select[Any]):
        compiled = stmt.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.positional = compiled.positiontup  # None for named paramstyles (psycopg)
        self.names = [c.name for c in stmt.selected_columns]
        # SQLite hands JSON back as text; psycopg has already decoded it.
        json_cols = {c.name for c in stmt.selected_columns if isinstance(c.type, sa.JSON)}
        self.json = json_cols if engine.dialect.name == "sqlite" else set()

    def one(self, **params: object) -> SimpleNamespace | None:
        args = [params[k] for k in self.positional] if self.positional is not None else params
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(self.sql, args)
            row = cur.fetchone()
            cur.close()
        except Exception as exc:  # the driver's own: no handle_error hook on this path
            fault = faults.translate(exc)
            if fault is not None:
                raise fault from exc
            raise
        finally:
            conn.close()  # back to the pool, which ends any implicit transaction
        if row is None:
            return None
        values = dict(zip(self.names, row, strict=True))
        for name in self.json:
            if values[name] is not None:
                values[name] = orjson.loads(values[name])
        return SimpleNamespace(**values)
