"""Database failures that are the machine's, not the request's, named as domain errors.

A write that waited out SQLite's busy timeout, a lock or statement timeout, a lost or refused
PostgreSQL connection: :class:`~jobyard.errors.Unavailable` (503, try again in a second). A
full disk or database: :class:`~jobyard.errors.StorageFull` (507). Anything else stays what
it was (a bug: 500). The engines raise these from SQLAlchemy's ``handle_error`` hook
(:mod:`jobyard.store.engine`), so every caller sees the same two errors on both databases.
"""

from __future__ import annotations

import sqlite3

from jobyard.errors import (
    BUSY_RETRY_AFTER_S,
    FULL_RETRY_AFTER_S,
    JobyardError,
    StorageFull,
    Unavailable,
    storage_fault,
)

# SQLite's primary result codes (the low byte of an extended code).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL = 5, 6, 13

# PostgreSQL SQLSTATEs (and classes, by their first two characters) worth a retry: connection
# lost or refused, insufficient resources, operator intervention (statement timeout, shutdown),
# lock not available, serialization failure, deadlock.
_PG_TRANSIENT = ("08", "53", "57", "55P03", "40001", "40P01")
_PG_DISK_FULL = "53100"


def translate(exc: BaseException, disconnect: bool = False) -> JobyardError | None:
    """The domain error a driver's exception ``exc`` stands for, or None when it is a bug.
    ``disconnect``: SQLAlchemy judged that the connection is gone."""
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == SQLITE_FULL:
            return full()
        if code in (SQLITE_BUSY, SQLITE_LOCKED):
            return busy("the database is locked by another writer")
        return None
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate == _PG_DISK_FULL:
        return full()
    if sqlstate.startswith(_PG_TRANSIENT):
        return busy(f"the database cannot serve this now ({sqlstate})")
    if disconnect or (type(exc).__name__ == "OperationalError" and not sqlstate):
        return busy("the database cannot be reached")
    return storage_fault(exc)


def busy(reason: str) -> Unavailable:
    return Unavailable(f"The service is busy ({reason}); try again shortly.",
                       {"retry_after": BUSY_RETRY_AFTER_S})


def full() -> StorageFull:
    return StorageFull(details={"retry_after": FULL_RETRY_AFTER_S})
