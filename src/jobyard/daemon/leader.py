"""One daemon leads at a time: an advisory lock on PostgreSQL, a file lock beside SQLite.

Several API replicas may share a database; only the leader schedules and runs jobs. The others
stand by and take over when the leader's connection (or process) goes away.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import sqlalchemy as sa

from jobyard.store.engine import Engines

_LOCK_KEY = 7420152


class Leadership:
    def __init__(self, engines: Engines, lock_dir: Path):
        self.engines = engines
        database = engines.write.url.database if engines.is_sqlite else None
        # Beside the database file: two servers on one SQLite file must not both lead.
        self.lock_path = Path(database + ".daemon-lock") if database else lock_dir / "daemon.lock"
        self._conn: sa.Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engines.is_sqlite:
            return self._try_file_lock()
        conn = self.engines.write.connect()
        got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_LOCK_KEY})").scalar()
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return bool(got)

    def _try_file_lock(self) -> bool:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
                self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
