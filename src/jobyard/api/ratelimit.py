"""Rate limits (the ``limits`` library, moving windows kept in this process's memory).

One :class:`RateLimiter` per rule, e.g. TensorOne's status checks per API key or
Integrate.io's credits per user. Counts are per server process: with several replicas each
counts its own share (a shared storage backend of ``limits`` would make them global).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the oldest counted hit leaves the window

    @property
    def retry_after(self) -> int:
        """Whole seconds until a hit would be allowed again (at least 1 when refused)."""
        return max(1, math.ceil(self.reset_at - time.time())) if not self.allowed else 0

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit),
               "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(math.ceil(self.reset_at))}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """``spec`` is a ``limits`` string: ``"100/minute"``, ``"5000/hour"``."""

    def __init__(self, spec: str):
        self.item: RateLimitItem = parse(spec)
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    @property
    def window(self) -> str:
        """The window as TensorOne writes it: ``1m``, ``1h``, ``30s``."""
        seconds = self.item.get_expiry()
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    def hit(self, key: str, cost: int = 1) -> Verdict:
        allowed = self._strategy.hit(self.item, key, cost=cost)
        return self._verdict(key, allowed)

    def peek(self, key: str) -> Verdict:
        return self._verdict(key, True)

    def _verdict(self, key: str, allowed: bool) -> Verdict:
        reset, remaining = self._strategy.get_window_stats(self.item, key)
        return Verdict(allowed, self.item.amount, max(0, remaining), float(reset))
