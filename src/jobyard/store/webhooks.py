"""Webhooks in the SQL store: the outbox, the delivery log, each user's default and secret.

Every job event is handed to :meth:`SqlWebhooks.enqueue` by the event writer
(``store/events.py``), in the event's transaction; when the job's webhook (or, without one, its
owner's default) wants that event type, an outbox row is written. A committed event therefore
always has its deliveries, and the delivery worker (``jobyard.events.delivery``) sends each at
least once.

``users.webhook`` holds ``{"url", "events", "secret"}``: the owner's default target and the
signing secret for every webhook of the user's jobs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from jobyard.core import webhooks as wh
from jobyard.core.models import Job
from jobyard.core.ports import Delivery
from jobyard.store import tables as t
from jobyard.store.db import Db, Repository

DEFAULT_CACHE_S = 2.0  # how stale another replica's view of a user's default may be
MAX_LOG = 100  # attempts kept in a delivery's log

_D = t.webhook_deliveries
_INSERT = sa.insert(_D)
_USER_WEBHOOK = sa.select(t.users.c.webhook).where(t.users.c.id == sa.bindparam("user_id"))


class SqlWebhooks(Repository):
    """The outbox and what it sends with: deliveries, users' defaults and secrets."""

    def __init__(self, db: Db):
        super().__init__(db)
        # user id -> (read at, {"url", "events"} or None); a write here updates it at once.
        self._defaults: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._enqueued = 0  # outbox rows written by this process
        self._announced = 0
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_outbox_listener(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def announce(self) -> None:
        """After a commit: tell the listeners if it wrote outbox rows."""
        if self._enqueued != self._announced:
            self._announced = self._enqueued
            for listener in self._listeners:
                listener()

    # the outbox ----------------------------------------------------------------------------------
    def enqueue(self, conn: sa.Connection, job: Job, event_id: int, ts: float, kind: str,
                data: dict[str, Any]) -> None:
        etype = wh.event_type(kind, data)
        if etype is None:
            return
        target = job.webhook or self._default_for(conn, job.user_id)
        if not target or not target.get("url") or not wh.wants(target.get("events"), etype):
            return
        conn.execute(_INSERT, {
            "job_id": job.id, "user_id": job.user_id, "event_id": event_id, "event_type": etype,
            "url": target["url"], "payload": wh.payload(job, etype, event_id, ts, kind, data),
            "status": "pending", "attempts": 0, "next_attempt_at": ts, "created_at": ts,
            "log": [],
        })
        with self._lock:
            self._enqueued += 1

    def _default_for(self, conn: sa.Connection, user_id: int) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._defaults.get(user_id)
        if cached is not None and now - cached[0] < DEFAULT_CACHE_S:
            return cached[1]
        value = _target(conn.execute(_USER_WEBHOOK, {"user_id": user_id}).scalar())
        self._defaults[user_id] = (now, value)
        return value

    def due_deliveries(
        self, now: float, limit: int = 100, skip: Collection[int] = ()
    ) -> list[Delivery]:
        stmt = (
            sa.select(_D, t.users.c.webhook.label("user_webhook"))
            .join(t.users, t.users.c.id == _D.c.user_id)
            .where(_D.c.status == "pending", _D.c.next_attempt_at <= now)
            .order_by(_D.c.next_attempt_at, _D.c.id)
            .limit(limit + len(skip))
        )
        with self.engines.read.connect() as conn:
            rows = [r for r in conn.execute(stmt) if r.id not in skip][:limit]
        return [
            Delivery(r.id, r.job_id, r.user_id, r.event_type, r.url, r.payload, r.attempts,
                     (r.user_webhook or {}).get("secret"))
            for r in rows
        ]

    def record_attempt(
        self, delivery_id: int, entry: dict[str, Any], delivered: bool, retry_at: float | None
    ) -> None:
        def update(conn: sa.Connection) -> None:
            row = conn.execute(
                sa.select(_D.c.attempts, _D.c.log).where(_D.c.id == delivery_id).with_for_update()
            ).first()
            if row is None:  # its job was deleted meanwhile
                return
            status = "delivered" if delivered else "pending" if retry_at is not None else "failed"
            conn.execute(sa.update(_D).where(_D.c.id == delivery_id).values(
                status=status, attempts=row.attempts + 1, log=[*row.log, entry][-MAX_LOG:],
                next_attempt_at=None if delivered else retry_at,
                last_status=entry.get("status"), last_error=entry.get("error"),
                delivered_at=entry["ts"] if delivered else None,
            ))

        self.engines.write_tx(update)

    def job_deliveries(self, job_id: int, limit: int = 200) -> list[dict[str, Any]]:
        stmt = sa.select(_D).where(_D.c.job_id == job_id).order_by(_D.c.id).limit(limit)
        with self.engines.read.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def user_deliveries(self, user_id: int, limit: int = 100) -> list[dict[str, Any]]:
        stmt = sa.select(_D).where(_D.c.user_id == user_id).order_by(_D.c.id.desc()).limit(limit)
        with self.engines.read.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def purge_deliveries(self, cutoff: float) -> int:
        def write(conn: sa.Connection) -> int:
            return conn.execute(sa.delete(_D).where(
                _D.c.status.in_(("delivered", "failed")), _D.c.created_at < cutoff)).rowcount

        return self.engines.write_tx(write)

    # the user's default and secret ---------------------------------------------------------------
    def user_webhook(self, user_id: int) -> dict[str, Any]:
        return self._update_user_webhook(user_id, lambda current: current)

    def set_user_webhook(self, user_id: int, url: str | None, events: list[str]) -> dict[str, Any]:
        return self._update_user_webhook(
            user_id, lambda current: {**current, "url": url, "events": events if url else None}
        )

    def rotate_webhook_secret(self, user_id: int) -> dict[str, Any]:
        return self._update_user_webhook(
            user_id, lambda current: {**current, "secret": wh.new_secret()}
        )

    def _update_user_webhook(
        self, user_id: int, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        def update(conn: sa.Connection) -> dict[str, Any]:
            row = conn.execute(
                sa.select(t.users.c.webhook).where(t.users.c.id == user_id).with_for_update()
            ).first()
            current = dict(row.webhook or {}) if row else {}
            value = change(current)
            value.setdefault("secret", wh.new_secret())
            value.setdefault("url", None)
            value.setdefault("events", None)
            if value != (row.webhook if row else None):
                conn.execute(sa.update(t.users).where(t.users.c.id == user_id)
                             .values(webhook=value))
            return value

        value = self.engines.write_tx(update)
        self._defaults[user_id] = (time.monotonic(), _target(value))
        return value


def _target(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of ``users.webhook`` that routes events (never the secret)."""
    if not value or not value.get("url"):
        return None
    return {"url": value["url"], "events": value.get("events")}
