"""The SQL store's telemetry part: metric samples, budgets. Mixed into SqlStore."""

from __future__ import annotations


class TelemetryStore:
    pass
