"""What every repository of the SQL store shares: the engines, the clock, the change hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jobyard.store.engine import Engines


@dataclass(frozen=True, slots=True)
class Db:
    engines: Engines
    clock: Callable[[], float]
    # Told which jobs changed, after the commit (wakes the daemon, SSE streams, the outbox).
    on_change: Callable[[Iterable[int]], None]


class Repository:
    """Base of the per-resource repositories (``store/jobs.py``, ``store/clusters.py``, ...):
    the shared parts as plain attributes."""

    def __init__(self, db: Db):
        self.engines = db.engines
        self.clock = db.clock
        self.on_change = db.on_change


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key a single-row insert assigned."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class Row:
    """A dict that looks like a result row (``row._mapping``) to the row mappers."""

    def __init__(self, values: dict[str, Any]):
        self._mapping = values
