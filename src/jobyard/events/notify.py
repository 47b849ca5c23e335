"""In-process wake-ups after a commit: the daemon and SSE streams wait here instead of polling.

Writers may run in worker threads, so :meth:`Notifier.notify` is thread-safe. Other processes
(API replicas on PostgreSQL) are not reached: every waiter also wakes on a timeout and looks at
the store itself.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

ANY = 0  # topic woken by every change (the daemon listens here)


class Notifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, job_ids: Iterable[int] = ()) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        topics = {ANY, *job_ids}
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake(topics)
        else:
            loop.call_soon_threadsafe(self._wake, topics)

    def _wake(self, topics: set[int]) -> None:
        for topic in topics:
            for fut in self._waiters.pop(topic, ()):
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, topic: int = ANY, timeout: float = 1.0) -> None:
        """Return after the next change to ``topic`` or after ``timeout`` seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[topic].add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    self._waiters.pop(topic, None)
