"""Job events, and the webhook outbox written with them.

Every event of a job is written by :meth:`EventWriter.record`, which then hands it to the
outbox (``store/webhooks.py``) in the same transaction: a committed event always has its
deliveries, and the delivery worker (``jobyard.events.delivery``) sends each at least once.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

from jobyard.core.models import Job
from jobyard.store import tables as t
from jobyard.store.db import inserted_id

_INSERT_EVENT = sa.insert(t.job_events)


class Outbox(Protocol):
    def enqueue(self, conn: sa.Connection, job: Job, event_id: int, ts: float, kind: str,
                data: dict[str, Any]) -> None:
        """Write the deliveries ``job``'s webhook (or its owner's default) wants of this
        event, in the event's transaction."""


class EventWriter:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def record(self, conn: sa.Connection, job: Job, ts: float, kind: str,
               data: dict[str, Any]) -> int:
        """Write one ``job_events`` row and its outbox rows; returns the event's id."""
        event_id: int = inserted_id(conn.execute(
            _INSERT_EVENT,
            {"job_id": job.id, "ts": ts, "kind": kind, "state": str(job.state), "data": data},
        ))
        self.outbox.enqueue(conn, job, event_id, ts, kind, data)
        return event_id
