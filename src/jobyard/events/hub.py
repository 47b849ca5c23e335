"""Fan-out of a job's events to any number of live streams, with one store reader per job.

A thousand clients following one job must not mean a thousand queries per change: each job
that has followers gets one reader task, woken by the notifier (or every second, for changes
made by other replicas), which reads the new events once and hands them to every follower.
A follower first catches up from the store (resuming after ``Last-Event-ID``), then takes the
live events, skipping any it already had — so nothing is lost or repeated between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jobyard.core.models import JobEvent
from jobyard.core.ports import JobStore
from jobyard.core.states import JobState
from jobyard.events.notify import Notifier

Read = Callable[..., Awaitable[Any]]
POLL_S = 1.0


def is_final(ev: JobEvent) -> bool:
    return ev.kind == "state" and ev.state is not None and JobState(ev.state).is_terminal


@dataclass
class _Topic:
    last_id: int
    followers: set[asyncio.Queue[list[JobEvent]]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class EventHub:
    def __init__(self, jobs: JobStore, notifier: Notifier, read: Read):
        self.jobs = jobs
        self.notifier = notifier
        self.read = read  # runs a store call the way this deployment reads (inline or thread)
        self._topics: dict[int, _Topic] = {}

    async def follow(self, job_id: int, after: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events after ``after``, live, ending with its terminal event."""
        queue: asyncio.Queue[list[JobEvent]] = asyncio.Queue()
        topic = await self._join(job_id, queue)
        try:
            while True:
                backlog = await self.read(self.jobs.events, job_id, after, 500)
                for ev in backlog:
                    after = ev.id
                    yield ev
                    if is_final(ev):
                        return
                if len(backlog) < 500:
                    break
            job = await self.read(self.jobs.get_job, job_id)
            if job is None or job.is_terminal:
                # Its final event commits with its state: one more read sees everything.
                for ev in await self.read(self.jobs.events, job_id, after, 500):
                    yield ev
                return
            while True:
                for ev in await queue.get():
                    if ev.id <= after:
                        continue
                    after = ev.id
                    yield ev
                    if is_final(ev):
                        return
        finally:
            topic.followers.discard(queue)
            if not topic.followers:
                if topic.task is not None and not topic.task.done():
                    topic.task.cancel()
                if self._topics.get(job_id) is topic:
                    del self._topics[job_id]

    async def _join(self, job_id: int, queue: asyncio.Queue[list[JobEvent]]) -> _Topic:
        topic = self._topics.get(job_id)
        if topic is None:
            latest = await self.read(self.jobs.last_event_id, job_id)
            topic = self._topics.setdefault(job_id, _Topic(latest))
        topic.followers.add(queue)
        if topic.task is None or topic.task.done():
            topic.task = asyncio.create_task(self._pump(job_id, topic), name=f"events-{job_id}")
        return topic

    async def _pump(self, job_id: int, topic: _Topic) -> None:
        while topic.followers:
            with self.notifier.listen(job_id) as changed:
                batch = await self.read(self.jobs.events, job_id, topic.last_id, 500)
                if batch:
                    topic.last_id = batch[-1].id
                    for queue in list(topic.followers):
                        queue.put_nowait(batch)
                    if any(is_final(ev) for ev in batch):
                        return
                    continue
                await changed.wait(POLL_S)

    async def close(self) -> None:
        tasks = [t.task for t in self._topics.values() if t.task]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
