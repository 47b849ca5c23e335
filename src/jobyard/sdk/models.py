"""What the SDK's resource modules share: the :class:`_Model` base their frozen dataclasses build
on (from the API's JSON), time parsing, and :class:`Page` (one page of a listing).

Each model keeps the JSON it came from in ``raw`` (fields the SDK does not know yet included);
times are parsed to timezone-aware :class:`~datetime.datetime`. The models themselves live with
their resource: :mod:`jobyard.sdk.jobs`, :mod:`jobyard.sdk.accounts`, :mod:`jobyard.sdk.volumes`,
:mod:`jobyard.sdk.operations`, :mod:`jobyard.sdk.clusters`, :mod:`jobyard.sdk.endpoints`,
:mod:`jobyard.sdk.packages`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

__all__ = ["Page", "parse_time"]

T = TypeVar("T")

# Time fields whose names do not end in ``_at``.
_TIME_FIELDS = frozenset({"ts", "estimated_start", "estimated_completion"})


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 string (``...Z`` included) as an aware datetime; None stays None."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Model:
    """``from_dict`` for the SDK's dataclasses: known fields only, times parsed."""

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
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next one."""

    items: list[T]
    next_cursor: str | None = None
