"""The operation processor: carries out PENDING operations on the leading daemon only.

Each operation moves PENDING → PROCESSING → COMPLETED or FAILED. A transient failure (an
:class:`OSError`, :class:`Transient`, or an unexpected exception) moves it to RETRYING and it
is tried again after an exponential backoff, until ``request_max_attempts`` is spent. A
:class:`~jobyard.errors.JobyardError` fails it at once, with its message. Operations a crashed
leader left PROCESSING are run again when leadership starts, so handlers must be idempotent.
Besides operations, the loop runs periodic chores (e.g. measuring volume usage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jobyard.config import Config
from jobyard.core.operations import Operation, OperationStatus, OperationType, backoff_s
from jobyard.core.ports import Store
from jobyard.errors import JobyardError
from jobyard.events.notify import call_in_loop, within

log = logging.getLogger(__name__)
S = OperationStatus


class Transient(Exception):
    """A failure worth retrying later (the message is shown on the operation)."""


@dataclass(frozen=True, slots=True)
class Handler:
    """``run`` does the work and returns the message shown on success; ``failed`` undoes
    what the operation reserved once it failed for good. Both must be idempotent."""

    run: Callable[[Operation], Awaitable[str]]
    failed: Callable[[Operation], Awaitable[None]] | None = None


@dataclass(slots=True)
class Chore:
    every_s: float
    fn: Callable[[], Awaitable[None]]
    due: float = 0.0


class OperationProcessor:
    def __init__(
        self, store: Store, config: Config, is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.poll_s = config.request_poll_interval_s
        self.concurrency = config.request_concurrency
        self.max_attempts = config.request_max_attempts
        self.backoff = (config.request_retry_base_s, config.request_retry_max_s)
        self.delay_s = config.request_processing_delay_s
        self.is_leader = is_leader
        self.clock = clock
        self.handlers: dict[OperationType, Handler] = {}
        self.chores: list[Chore] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}

    def handle(self, kind: OperationType, handler: Handler) -> None:
        self.handlers[kind] = handler

    def every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        self.chores.append(Chore(seconds, fn))

    def nudge(self) -> None:
        """Look for operations now (thread-safe)."""
        if self._wake is not None:
            call_in_loop(self._loop, self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        leading = False
        try:
            while True:
                self._wake.clear()
                if not self.is_leader():
                    leading = False
                else:
                    # On becoming leader, operations left PROCESSING are resumed too.
                    await self._start_due(resume=not leading)
                    leading = True
                    await self._run_chores()
                await within(self._wake.wait(), self.poll_s)
        finally:
            tasks = list(self._inflight.values())
            for task in tasks:  # their operations stay PROCESSING: resumed by the next leader
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_due(self, resume: bool) -> None:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return
        try:
            due = await asyncio.to_thread(self.store.operations.due_operations,
                                          self.clock(), free, set(self._inflight), resume)
        except Exception:
            log.exception("requests: reading due requests failed")
            return
        for req in due:
            self._inflight[req.id] = asyncio.create_task(self._process(req), name=req.uid)

    async def _run_chores(self) -> None:
        now = time.monotonic()
        for chore in self.chores:
            if now >= chore.due:
                chore.due = now + chore.every_s
                try:
                    await chore.fn()
                except Exception:
                    log.exception("requests: chore %s failed", chore.fn)

    async def _process(self, req: Operation) -> None:
        try:
            await self._attempt(req)
        except Exception:
            log.exception("requests: recording %s failed; it is tried again later", req.uid)
        finally:
            self._inflight.pop(req.id, None)
            self.nudge()  # a slot is free

    async def _attempt(self, req: Operation) -> None:
        move = self.store.operations.move_operation
        handler = self.handlers.get(req.type)
        if handler is None:
            await asyncio.to_thread(move, req, S.FAILED,
                                    external_message=f"{req.type} is not supported yet")
            return
        req = await asyncio.to_thread(move, req, S.PROCESSING, attempts=req.attempts + 1,
                                      external_message="Processing")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # test knob: keeps a operation observable
        try:
            message = await handler.run(req)
        except JobyardError as exc:
            await self._fail(req, handler, exc.message)
        except Exception as exc:  # transient: tried again with backoff
            if not isinstance(exc, (Transient, OSError)):
                log.exception("requests: %s (%s) failed unexpectedly", req.uid, req.type)
            text = str(exc) or type(exc).__name__
            if req.attempts >= self.max_attempts:
                await self._fail(req, handler, f"gave up after {req.attempts} attempts: {text}")
                return
            wait = backoff_s(req.attempts, *self.backoff)
            await asyncio.to_thread(move, req, S.RETRYING, next_attempt_at=self.clock() + wait,
                                    external_message=f"Retrying in {wait:g}s: {text}")
            assert self._loop is not None
            self._loop.call_later(wait, self.nudge)
        else:
            await asyncio.to_thread(move, req, S.COMPLETED, external_message=message)

    async def _fail(self, req: Operation, handler: Handler, message: str) -> None:
        if handler.failed is not None:
            await handler.failed(req)
        await asyncio.to_thread(self.store.operations.move_operation,
                                req, S.FAILED, external_message=message)
