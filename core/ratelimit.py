"""A token bucket per licence key."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Allows ``per_minute`` requests a minute per key, with bursts up to the same number."""

    def __init__(self, *, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def blocked(self, key: str) -> int | None:
        """None while ``key`` has a token left (taking none), else the seconds to wait."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
        if tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.refill_per_second))

    def acquire(self, key: str) -> int | None:
        """Take one token; None when allowed, else the whole seconds to wait before retrying."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.refill_per_second))
