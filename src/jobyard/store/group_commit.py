"""Group commit for SQLite: one writer thread runs every write of the process.

SQLite admits one writer at a time. Threads that each take the lock, write and commit spend
more on the commit than on the write, and they contend unfairly (the daemon could starve
behind a burst of submits). Here, every write is a function of a connection, queued; the
writer thread runs all queued functions in one transaction — each inside a savepoint, so one
failing function undoes only its own statements — commits once, then hands each caller its
result. A caller returns only after the commit: a 2xx still means "committed".
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
MAX_BATCH = 256

_Item = tuple[Callable[[sa.Connection], Any], "Future[Any]"]


class GroupCommitter:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in a write transaction; return once that transaction has committed."""
        self._ensure_thread()
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="jobyard-sqlite-writer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.engine.begin() as conn:
                for fn, _ in batch:
                    savepoint = conn.begin_nested()
                    try:
                        outcomes.append((True, fn(conn)))
                        savepoint.commit()
                    except Exception as exc:
                        savepoint.rollback()
                        outcomes.append((False, exc))
        except Exception as exc:  # the commit itself failed: nothing of the batch is written
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
