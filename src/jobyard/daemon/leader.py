"""One daemon leads at a time: a fenced lease on PostgreSQL, a file lock beside SQLite.

Several API replicas may share a PostgreSQL database; only the leader schedules and runs jobs,
the others stand by. The leader holds the ``daemon`` row of ``leases`` and renews it every
``lease_s / 3``; a replica takes it over once it has expired (by the database's clock), which
gives it the next ``token``. Every write of the daemon is checked against its token
(:class:`~jobyard.store.engine.Fence`), so a leader that was paused or cut off past its lease
writes nothing once another holds it: it finds out at its next write or renewal and stands
down. SQLite is one machine: a file lock beside the database, released with the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from jobyard.store.engine import Engines, Fence

LEASE = "daemon"
_NOW = "extract(epoch from clock_timestamp())"
_ACQUIRE = sa.text(f"""
    INSERT INTO leases (name, holder, token, expires_at, acquired_at)
    VALUES (:name, :holder, 1, {_NOW} + :lease_s, {_NOW})
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = leases.token + 1,
        expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
    WHERE leases.expires_at < {_NOW}
    RETURNING token""")
_RENEW = sa.text(f"""
    UPDATE leases SET expires_at = {_NOW} + :lease_s
    WHERE name = :name AND holder = :holder AND token = :token""")
_RELEASE = sa.text("""
    UPDATE leases SET expires_at = 0 WHERE name = :name AND holder = :holder AND token = :token""")


class Leadership:
    """The daemon's leadership for this process. ``fence`` (PostgreSQL only) is what its
    writes are checked against; ``lease_s`` how long a lease lasts unrenewed."""

    def __init__(self, engines: Engines, lock_dir: Path, lease_s: float = 3.0):
        self.engines = engines
        self.lease_s = lease_s
        database = engines.write.url.database if engines.is_sqlite else None
        # Beside the database file: two servers on one SQLite file must not both lead.
        self.lock_path = Path(database + ".daemon-lock") if database else lock_dir / "daemon.lock"
        self.holder = uuid.uuid4().hex
        self.fence = None if engines.is_sqlite else Fence(LEASE)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or (self.fence is not None and self.fence.token is not None)

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.fence is None:
            return self._try_file_lock()
        with self.engines.write.begin() as conn:
            token = conn.execute(_ACQUIRE, self._params()).scalar()
        self.fence.token = token
        return token is not None

    def renew(self) -> bool:
        """Extend the lease; False once it is lost (another replica holds it now, or the
        database cannot be reached for longer than it lasts): this daemon must stand down."""
        if self.fence is None or self.fence.token is None:
            return self.held
        try:
            with self.engines.write.begin() as conn:
                kept = conn.execute(_RENEW, {**self._params(), "token": self.fence.token}).rowcount
        except sa.exc.OperationalError:
            return True  # not lost yet: a write would be refused once it is
        if not kept:
            self.fence.token = None
        return bool(kept)

    def _params(self) -> dict[str, object]:
        return {"name": LEASE, "holder": self.holder, "lease_s": self.lease_s}

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
        """Let go at once (a clean stop): another replica need not wait for the lease."""
        if self.fence is not None and self.fence.token is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError), self.engines.write.begin() as conn:
                conn.execute(_RELEASE, {**self._params(), "token": self.fence.token})
            self.fence.token = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
