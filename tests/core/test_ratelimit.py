"""The per-key token bucket."""

from __future__ import annotations

from core.ratelimit import RateLimiter


def test_bursts_up_to_the_rate_then_waits_for_refill() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=120, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(120)] == [None] * 120
    assert limiter.acquire("k") == 1  # one token refills in 0.5 s; rounded up to 1 s
    now[0] += 0.5
    assert limiter.acquire("k") is None
    assert limiter.acquire("other") is None  # buckets are per key


def test_retry_after_counts_whole_seconds_until_a_token() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") is None
    assert limiter.acquire("k") == 30
    now[0] += 29.0
    assert limiter.acquire("k") == 1
    now[0] += 1.0
    assert limiter.acquire("k") is None
