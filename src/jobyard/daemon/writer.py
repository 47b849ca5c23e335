"""Write-behind for the daemon: transitions queued from many attempts share one transaction.

At hundreds of jobs a second the cost of a commit dominates; attempts ``await`` their own
transition's result, but all transitions queued while the previous batch was being written go
to the store together. Writes run on one worker thread, in order, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jobyard.core.models import Job
from jobyard.core.ports import Store, Transition

T = TypeVar("T")


class BatchWriter:
    def __init__(self, store: Store):
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobyard-daemon-db")
        self._pending: list[tuple[Transition, asyncio.Future[Job | Exception]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the daemon's database thread, in the caller's context (its
        writes fenced as the caller's are: :data:`~jobyard.store.engine.FENCE`)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._thread, context.run, fn,
                                                                *args)

    async def apply(self, transition: Transition) -> Job | Exception:
        fut: asyncio.Future[Job | Exception] = asyncio.get_running_loop().create_future()
        self._pending.append((transition, fut))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await fut

    async def apply_many(self, transitions: list[Transition]) -> list[Job | Exception]:
        return list(await asyncio.gather(*(self.apply(t) for t in transitions)))

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self.call(self.store.jobs.apply, [t for t, _ in batch])
            except Exception as exc:  # the whole transaction failed: every caller learns it
                results = [exc] * len(batch)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
