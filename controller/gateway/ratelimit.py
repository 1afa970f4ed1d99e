"""Per-key rate limits: a token bucket per client key, held in this process's memory."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 10_000
"""Buckets kept at most; the least recently used is dropped first (it refills to full anyway)."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` requests per second per key, with bursts of up to ``burst``."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """Spend one request of ``key``'s budget: 0 if allowed, else seconds until one is."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self._rate


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
