"""Wake-ups between replicas on one PostgreSQL: ``LISTEN``/``NOTIFY`` on one channel.

A replica's :class:`~jobyard.events.notify.Notifier` wakes its own daemon and streams after each
commit; :class:`PgChannel` carries the same wake-ups to every other replica, so a job submitted
on a standby replica is launched by the leader at once, and an SSE stream on any replica sees a
change the leader committed without waiting for its poll. Messages are wake-ups only (which
jobs changed, what the daemon should look at): every receiver reads the store itself, so a lost
message costs a poll interval, never a wrong answer.

One thread sends (bursts coalesced into one ``pg_notify`` per kind), one listens (reconnecting
with backoff); both on their own connections, outside the engines' pools.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterable

import psycopg
import sqlalchemy as sa

from jobyard.events.notify import Notifier

log = logging.getLogger(__name__)
CHANNEL = "jobyard"
MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes
RECONNECT_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class PgChannel:
    """Connects ``notifier`` to the other replicas on the database at ``url``."""

    def __init__(self, url: str, notifier: Notifier):
        self.dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        self.notifier = notifier
        self.me = uuid.uuid4().hex[:12]
        self._out: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.notifier.link(self.publish)
        for target, name in ((self._send, "jobyard-notify-send"),
                             (self._listen, "jobyard-notify-listen")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.notifier.link(None)
        self._stop.set()
        self._out.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def publish(self, kind: str, what: str) -> None:
        """Tell the other replicas: ``("jobs", "1,2")`` changed, or ``("daemon", kind)``."""
        self._out.put((kind, what))

    # sending -----------------------------------------------------------------------------------
    def _send(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            first = self._out.get()
            if first is None:
                break
            batch = [first]
            while True:  # everything queued meanwhile goes in the same few messages
                try:
                    item = self._out.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stop.set()
                    break
                batch.append(item)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                for payload in self._payloads(batch):
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except psycopg.Error as exc:  # the others poll meanwhile; the next send reconnects
                log.warning("cannot notify the other replicas: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _payloads(self, batch: Iterable[tuple[str, str]]) -> list[str]:
        ids: set[str] = set()
        wakes: set[str] = set()
        for kind, what in batch:
            if kind == "jobs":
                ids.update(what.split(","))
            else:
                wakes.add(what)
        out = [f"{self.me}|daemon|{kind}" for kind in sorted(wakes)]
        chunk: list[str] = []
        for job_id in sorted(ids, key=int):
            chunk.append(job_id)
            if sum(len(x) + 1 for x in chunk) > MAX_PAYLOAD:
                out.append(f"{self.me}|jobs|{','.join(chunk)}")
                chunk = []
        if chunk:
            out.append(f"{self.me}|jobs|{','.join(chunk)}")
        return out

    # listening ---------------------------------------------------------------------------------
    def _listen(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._receive(note.payload)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                wait = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
                failures += 1
                log.warning("not hearing the other replicas (%s); again in %.1f s", exc, wait)
                self._stop.wait(wait)

    def _receive(self, payload: str) -> None:
        sender, kind, what = payload.split("|", 2)
        if sender == self.me:
            return
        if kind == "jobs":
            self.notifier.notify((int(x) for x in what.split(",") if x), relayed=True)
        elif kind == "daemon":
            self.notifier.wake_daemon(what, relayed=True)
