"""In-process wake-ups after a commit: the daemon and SSE streams wait here instead of polling.

Writers may run in worker threads, so :meth:`Notifier.notify` is thread-safe. Other replicas
on PostgreSQL are reached through a link (:mod:`jobyard.events.replicas`) where one is set;
every waiter also wakes on a timeout and looks at the store itself.

No wake-up is lost: the daemon's is level-triggered (an event it clears before each look), and
a stream subscribes *before* it reads the store (:meth:`Notifier.listen`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator


def call_in_loop(
    loop: asyncio.AbstractEventLoop | None, fn: Callable[..., object], *args: object
) -> None:
    """Run ``fn(*args)`` on ``loop``: now if we are on it, else soon (from any thread)."""
    if loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


async def within(awaitable: Awaitable[object], timeout: float) -> bool:
    """Await ``awaitable`` for at most ``timeout`` seconds; False if the time ran out.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11, ``wait_for`` can swallow a
    cancellation that arrives just as the awaited thing completes, and a loop built on it then
    never stops (seen as a hang at shutdown)."""
    try:
        async with asyncio.timeout(timeout):
            await awaitable
    except TimeoutError:
        return False
    return True


class Subscription:
    def __init__(self, fut: asyncio.Future[None]):
        self._fut = fut

    async def wait(self, timeout: float) -> bool:
        """True if a change came (possibly before this call), False on timeout."""
        return await within(asyncio.shield(self._fut), timeout)


class Notifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)
        self._daemon: asyncio.Event | None = None
        self._cancels = False  # a cancel was asked for since the daemon last looked
        self._pauses = False  # a pause or resume, likewise
        self._link: Callable[[str, str], None] | None = None  # to the other replicas

    def link(self, publish: Callable[[str, str], None] | None) -> None:
        """Also tell the other replicas (``publish(kind, what)``) of every wake-up."""
        self._link = publish

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._daemon = asyncio.Event()

    def wake_daemon(self, kind: str = "", relayed: bool = False) -> None:
        """There is something for the daemon to do (a submit, a cancel, a pause or resume,
        freed resources); ``relayed``: another replica said so (not told again)."""
        if self._link is not None and not relayed:
            self._link("daemon", kind)
        if kind == "cancel":
            self._cancels = True
        elif kind in ("pause", "resume"):
            self._pauses = True
        self._call(self._set_daemon)

    def take_cancels(self) -> bool:
        """Whether a cancel was asked for since the last call (the daemon's to ask)."""
        pending, self._cancels = self._cancels, False
        return pending

    def take_pauses(self) -> bool:
        """Whether a pause or resume was asked for since the last call (the daemon's to ask)."""
        pending, self._pauses = self._pauses, False
        return pending

    def notify(self, job_ids: Iterable[int], relayed: bool = False) -> None:
        """These jobs changed (called after the commit; ``relayed``: by another replica)."""
        ids = set(job_ids)
        if ids:
            if self._link is not None and not relayed:
                self._link("jobs", ",".join(map(str, ids)))
            self._call(self._wake, ids)

    async def daemon_wait(self, timeout: float) -> bool:
        """Wait for a wake-up; False if the timeout came first."""
        assert self._daemon is not None, "bind() first"
        woken = await within(self._daemon.wait(), timeout)
        self._daemon.clear()
        return woken

    @contextlib.contextmanager
    def listen(self, job_id: int) -> Iterator[Subscription]:
        """Subscribe to one job's changes; read the store inside the block, then ``wait``."""
        assert self._loop is not None, "bind() first"
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters[job_id].add(fut)
        try:
            yield Subscription(fut)
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    self._waiters.pop(job_id, None)

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        call_in_loop(self._loop, fn, *args)

    def _set_daemon(self) -> None:
        if self._daemon is not None:
            self._daemon.set()

    def _wake(self, ids: set[int]) -> None:
        for job_id in ids:
            for fut in self._waiters.pop(job_id, ()):
                if not fut.done():
                    fut.set_result(None)
