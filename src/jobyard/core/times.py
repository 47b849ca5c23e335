"""Times as every API writes them: ISO 8601 in UTC, ``2026-12-04T20:19:00.5Z`` (the core keeps
UNIX epoch seconds)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
