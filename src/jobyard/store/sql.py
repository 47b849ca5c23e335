"""The SQL store (SQLite or PostgreSQL): one repository per resource, composed.

Each repository is a module of its own (``store/jobs.py``, ``store/clusters.py``, ...) and
implements the matching port of ``core/ports.py``. Job events and their webhook outbox rows are
written by one explicit step (``store/events.py``), whichever repository changes a job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from jobyard.store.accounts import SqlAccounts
from jobyard.store.clusters import SqlClusters
from jobyard.store.db import Db
from jobyard.store.endpoints import SqlEndpoints
from jobyard.store.engine import Engines
from jobyard.store.events import EventWriter
from jobyard.store.jobs import SqlJobs
from jobyard.store.kv import SqlKv
from jobyard.store.operations import SqlOperations
from jobyard.store.packages import SqlPackages
from jobyard.store.telemetry import SqlTelemetry
from jobyard.store.volumes import SqlVolumes
from jobyard.store.webhooks import SqlWebhooks


class SqlStore:
    """Every repository over one database; ``on_change`` is told which jobs changed, after
    each commit (it wakes the daemon and SSE streams)."""

    def __init__(
        self,
        engines: Engines,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[Iterable[int]], None] | None = None,
    ):
        self.engines = engines
        self.clock = clock
        self._on_change = on_change or (lambda _ids: None)
        db = Db(engines, clock, self._changed)
        self.webhooks = SqlWebhooks(db)
        self.jobs = SqlJobs(db, EventWriter(self.webhooks))
        self.accounts = SqlAccounts(db)
        self.operations = SqlOperations(db)
        self.clusters = SqlClusters(db, self.operations)
        self.volumes = SqlVolumes(db, self.operations)
        self.packages = SqlPackages(db)
        self.endpoints = SqlEndpoints(db)
        self.telemetry = SqlTelemetry(db)
        self.kv = SqlKv(db)

    def _changed(self, job_ids: Iterable[int]) -> None:
        self._on_change(job_ids)
        self.webhooks.announce()
