"""Per-key token buckets: a burst, then the sustained rate, each key on its own."""

from __future__ import annotations

import pytest

from controller.gateway.ratelimit import MAX_KEYS, RateLimiter, retry_after_header


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_key_waits_for_its_rate() -> None:
    clock = _Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == pytest.approx(0.5)  # one token per 0.5 s at 2/s
    clock.now += 0.5
    assert limiter.take("k") == 0
    assert limiter.take("k") > 0


def test_keys_do_not_share_a_budget() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=_Clock())
    assert limiter.take("a") == 0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0


def test_an_idle_key_refills_only_up_to_the_burst() -> None:
    clock = _Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    limiter.take("k")
    clock.now += 3600
    assert [limiter.take("k") == 0 for _ in range(3)] == [True, True, False]


def test_the_number_of_buckets_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=_Clock())
    for key in range(MAX_KEYS + 50):
        limiter.take(key)
    assert len(limiter._buckets) == MAX_KEYS


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (30, "30")])
def test_retry_after_is_whole_seconds_and_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
