"""Typed results of the SDK: frozen dataclasses built from the API's JSON.

Each keeps the JSON it came from in ``raw`` (fields the SDK does not know yet included);
times are parsed to timezone-aware :class:`~datetime.datetime`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

from jobyard.core.states import TERMINAL

T = TypeVar("T")

TERMINAL_STATES: frozenset[str] = frozenset(str(s) for s in TERMINAL)
_TIME_FIELDS = frozenset({"ts", "estimated_start", "estimated_completion"})


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 string (``...Z`` included) as an aware datetime; None stays None."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Model:
    """``from_dict`` for the dataclasses below: known fields only, times parsed."""

    __slots__ = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name == "raw":
                kwargs["raw"] = data
            elif f.name in data:
                value = data[f.name]
                if f.name.endswith("_at") or f.name in _TIME_FIELDS:
                    value = parse_time(value)
                kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Job(_Model):
    """A job as the server last reported it. ``raw`` holds the full JSON."""

    id: str
    state: str
    number: int | None = None
    name: str | None = None
    substate: str | None = None
    command: str | list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    instance_type: str | None = None
    priority: int = 0
    time_limit_s: float | None = None
    retry: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    attempt: int = 1
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    message: str | None = None
    error: dict[str, Any] | None = None
    next_retry_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    assigned: dict[str, Any] | None = None
    cancel_receipt: dict[str, Any] | None = None
    waiting: dict[str, Any] | None = None
    owner: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None  # {"id", "ephemeral", ...}: which cluster runs it
    # What the job reported of its current attempt, and what it costs.
    progress: float | None = None
    current_step: str | None = None
    metadata: dict[str, Any] | None = None
    throughput: dict[str, Any] | None = None
    items: dict[str, Any] | None = None
    estimated_completion: datetime | None = None
    cost: dict[str, Any] | None = None
    cold_start: dict[str, Any] | None = None
    efficiency: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the job has ended (completed, error, failed, timeout or canceled)."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "completed"

    @property
    def gpus(self) -> int:
        return int(self.resources.get("gpus") or 0)

    @property
    def duration_s(self) -> float | None:
        """Run time so far (or in total, once finished); None before it started."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next one."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine(_Model):
    n: int
    text: str
    stream: str = "stdout"
    ts: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: list[LogLine]
    next_offset: int
    eof: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogPage:
        return cls(
            lines=[LogLine.from_dict(line) for line in data.get("lines", [])],
            next_offset=int(data.get("next_offset") or 0),
            eof=bool(data.get("eof")),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a job's event log (``GET /v1/jobs/{id}/events``)."""

    id: str
    kind: str
    data: dict[str, Any]

    @property
    def state(self) -> str | None:
        return self.data.get("state")

    @property
    def job_id(self) -> str | None:
        return self.data.get("job_id")

    @property
    def ts(self) -> datetime | None:
        return parse_time(self.data.get("ts"))

    @property
    def is_terminal(self) -> bool:
        """A ``state`` event into a terminal state: the last event of the stream."""
        return self.kind == "state" and self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class Me(_Model):
    user_id: int
    username: str
    org_id: int | None = None
    is_admin: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class User(_Model):
    username: str
    id: int | None = None
    org_id: int | None = None
    org: str | None = None
    is_admin: bool = False
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Org(_Model):
    name: str
    id: int | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ApiKey(_Model):
    """An API key's metadata; ``key`` (the secret) is set only in the answer to create."""

    id: int | str
    name: str | None = None
    prefix: str | None = None
    user_id: int | None = None
    username: str | None = None
    key: str | None = field(default=None, repr=False)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
