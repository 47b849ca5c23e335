"""Async operations: the one place for their types, statuses, moves and polling advice.

An operation (TensorPool's "request": ``GET /request/info/{request_id}``; the wire keeps that
word) is intent recorded by the API; only the leading daemon's operation processor
(``jobyard.operations.processor``) moves it out of ``PENDING``. The type and status names are
TensorPool's, so every dialect shows the same words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobyard.core.models import Principal
from jobyard.core.ports import OperationStore
from jobyard.errors import NotFound

MAX_LIST = 500


class OperationType(StrEnum):
    CLUSTER_CLAIM = "CLUSTER_CLAIM"
    CLUSTER_RELEASE = "CLUSTER_RELEASE"
    CLUSTER_EDIT = "CLUSTER_EDIT"
    STORAGE_CREATE = "STORAGE_CREATE"
    STORAGE_DESTROY = "STORAGE_DESTROY"
    STORAGE_ATTACH = "STORAGE_ATTACH"
    STORAGE_DETACH = "STORAGE_DETACH"
    STORAGE_EDIT = "STORAGE_EDIT"


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"


S = OperationStatus
TERMINAL: frozenset[OperationStatus] = frozenset({S.COMPLETED, S.FAILED})
# PROCESSING -> PROCESSING: a request resumed after a crash of the leader that ran it.
MOVES: dict[OperationStatus, frozenset[OperationStatus]] = {
    S.PENDING: frozenset({S.PROCESSING, S.FAILED}),
    S.PROCESSING: frozenset({S.PROCESSING, S.COMPLETED, S.FAILED, S.RETRYING}),
    S.RETRYING: frozenset({S.PROCESSING, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
}
# What a client should wait before polling again (the Retry-After header), in seconds.
POLL_S = {S.PENDING: 1, S.PROCESSING: 1}


def can_move(old: OperationStatus, new: OperationStatus) -> bool:
    return new in MOVES[old]


@dataclass(slots=True)
class Operation:
    id: int
    uid: str
    type: OperationType
    status: OperationStatus
    org_id: int
    user_id: int
    created_at: float
    updated_at: float
    object_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    external_message: str | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def retry_after(self, now: float) -> int | None:
        """Whole seconds to wait before polling again; None once terminal."""
        if self.terminal:
            return None
        if self.status is S.RETRYING and self.next_attempt_at is not None:
            return max(1, math.ceil(self.next_attempt_at - now))
        return POLL_S.get(self.status, 1)


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff after ``attempts`` failed attempts: base, 2·base, 4·base, …"""
    return float(min(max_s, base_s * 2 ** max(0, attempts - 1)))


class OperationService:
    """Operations as the API sees them: the caller's org's, newest first."""

    def __init__(self, operations: OperationStore, clock: Callable[[], float]):
        self._operations = operations
        self.clock = clock

    def get(self, who: Principal, uid: str) -> Operation:
        op = self._operations.get_operation(uid)
        if op is None or not who.sees(op.org_id):
            raise NotFound(f"request {uid} not found")
        return op

    def list(self, who: Principal, limit: int) -> list[Operation]:
        return self._operations.list_operations(who.org_id, min(limit, MAX_LIST))

    def retry_after(self, op: Operation) -> int | None:
        """Whole seconds a client should wait before polling ``op`` again (None: terminal)."""
        return op.retry_after(self.clock())
