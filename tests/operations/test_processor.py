"""The request processor against a real store: moves, backoff on transient errors, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from jobyard.config import load_config
from jobyard.core.models import Principal
from jobyard.core.operations import OperationStatus, OperationType, backoff_s
from jobyard.errors import Conflict, ValidationFailed
from jobyard.operations.processor import Handler, OperationProcessor, Transient
from jobyard.store import migrate
from jobyard.store.sql import SqlStore


@pytest.fixture
def store(engines):
    migrate.upgrade(engines.write)
    store = SqlStore(engines)
    store.accounts.create_org("o")
    user = store.accounts.create_user("u", "o")
    store.who = Principal(user_id=user["id"], org_id=user["org_id"], username="u")
    return store


def run_until(proc: OperationProcessor, done: Callable[[], bool]) -> None:
    async def main() -> None:
        task = asyncio.create_task(proc.run())
        for _ in range(1000):
            if await asyncio.to_thread(done):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert done()

    asyncio.run(main())


def processor(store: SqlStore, tmp_path, **knobs: Any) -> OperationProcessor:
    config = load_config(data_dir=tmp_path, request_retry_base_s=0.01, **knobs)
    return OperationProcessor(store, config)


def new_request(store: SqlStore) -> Any:
    req, _vol = store.volumes.create_volume(store.who, "v", 10)
    return req


def status(store: SqlStore, uid: str) -> OperationStatus:
    return store.operations.get_operation(uid).status


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_s(n, 1, 5) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_transient_failures_retry_then_complete(store, tmp_path):
    seen: list[str] = []

    async def flaky(req: Any) -> str:
        seen.append(str(store.operations.get_operation(req.uid).status))
        if len(seen) < 3:
            raise Transient("disk busy") if len(seen) == 1 else OSError("EIO")
        return "done"

    proc = processor(store, tmp_path)
    proc.handle(OperationType.STORAGE_CREATE, Handler(flaky))
    req = new_request(store)
    run_until(proc, lambda: status(store, req.uid) == OperationStatus.COMPLETED)
    final = store.operations.get_operation(req.uid)
    assert seen == ["PROCESSING"] * 3 and final.attempts == 3
    assert final.external_message == "done" and final.finished_at is not None


def test_permanent_errors_and_spent_attempts_fail_and_undo(store, tmp_path):
    undone: list[str] = []

    async def undo(req: Any) -> None:
        undone.append(req.uid)

    async def refuse(req: Any) -> str:
        raise ValidationFailed("no such thing")

    async def always(req: Any) -> str:
        raise OSError("still broken")

    handlers: dict[str, Callable[[Any], Awaitable[str]]] = {"refuse": refuse, "always": always}
    for name, fn in handlers.items():
        proc = processor(store, tmp_path, request_max_attempts=2)
        proc.handle(OperationType.STORAGE_CREATE, Handler(fn, undo))
        req = new_request(store)
        run_until(proc, lambda uid=req.uid: status(store, uid) == OperationStatus.FAILED)
        msg = store.operations.get_operation(req.uid).external_message
        assert ("no such thing" if name == "refuse" else "gave up after 2 attempts") in msg
        store.volumes.delete_volume(req.object_id)
    assert len(undone) == 2


def test_processing_requests_are_resumed_when_leadership_starts(store, tmp_path):
    req = store.operations.move_operation(new_request(store), OperationStatus.PROCESSING,
                                          attempts=1)

    async def ok(r: Any) -> str:
        return "resumed"

    proc = processor(store, tmp_path)
    proc.handle(OperationType.STORAGE_CREATE, Handler(ok))
    run_until(proc, lambda: status(store, req.uid) == OperationStatus.COMPLETED)
    assert store.operations.get_operation(req.uid).attempts == 2


def test_terminal_requests_do_not_move_and_unknown_types_fail(store, tmp_path):
    req = new_request(store)
    proc = processor(store, tmp_path)  # no handler registered
    run_until(proc, lambda: status(store, req.uid) == OperationStatus.FAILED)
    assert "not supported" in store.operations.get_operation(req.uid).external_message
    with pytest.raises(Conflict):
        store.operations.move_operation(req, OperationStatus.PROCESSING)
