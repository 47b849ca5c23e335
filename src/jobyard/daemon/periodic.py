"""Housekeeping the leading daemon runs on a schedule (retention, schedules, ...).

Each task is an async callable registered with its interval; it runs only while this replica
leads, one task at a time, and an exception is logged without stopping the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
IDLE_S = 1.0  # longest sleep between looks (leadership may change meanwhile)


@dataclass
class _Task:
    name: str
    interval_s: float
    fn: Callable[[], Awaitable[object]]
    due: float = 0.0


class Periodic:
    def __init__(self, is_leader: Callable[[], bool]):
        self.is_leader = is_leader
        self._tasks: list[_Task] = []

    def every(self, name: str, interval_s: float, fn: Callable[[], Awaitable[object]]) -> None:
        self._tasks.append(_Task(name, interval_s, fn))

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            if self.is_leader():
                for task in self._tasks:
                    if task.due <= now:
                        try:
                            await task.fn()
                        except Exception:
                            log.exception("periodic task %s failed", task.name)
                        task.due = time.monotonic() + task.interval_s
            nearest = min((t.due for t in self._tasks), default=now + IDLE_S)
            await asyncio.sleep(max(0.05, min(IDLE_S, nearest - time.monotonic())))
