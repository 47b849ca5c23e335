"""Rate limits (the ``limits`` library: moving windows).

One :class:`RateLimiter` per rule, e.g. TensorOne's status checks per API key or
Integrate.io's credits per user. Counts live where ``rate_limit_storage`` says: ``memory://``
(the default) counts per server process, so with several replicas each counts its own share;
a storage every replica reaches (``redis://host:6379``, or any other of ``limits``) makes them
hold across replicas. Keys carry the rule's name: rules never share a count.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
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
    """``spec`` is a ``limits`` string: ``"100/minute"``, ``"5000/hour"``; ``name`` the rule's
    (its keys' prefix); ``storage`` a ``limits`` storage URI."""

    def __init__(self, spec: str, name: str = "", storage: str = "memory://"):
        self.item: RateLimitItem = parse(spec)
        self.name = name
        self._strategy = MovingWindowRateLimiter(storage_from_string(storage))

    @property
    def window(self) -> str:
        """The window as TensorOne writes it: ``1m``, ``1h``, ``30s``."""
        seconds = self.item.get_expiry()
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"

    def hit(self, key: str, cost: int = 1) -> Verdict:
        allowed = self._strategy.hit(self.item, self.name, key, cost=cost)
        return self._verdict(key, allowed)

    def peek(self, key: str) -> Verdict:
        return self._verdict(key, True)

    def _verdict(self, key: str, allowed: bool) -> Verdict:
        reset, remaining = self._strategy.get_window_stats(self.item, self.name, key)
        return Verdict(allowed, self.item.amount, max(0, remaining), float(reset))
