"""Serving metrics since the last report: fed by the chat API, drained by the reporter."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

from shared.messages import MetricsBody
from shared.stats import percentile


@dataclass(frozen=True)
class RequestSample:
    """One answered chat request."""

    prompt_tokens: int
    generated_tokens: int
    decode_s: float
    ttft_s: float
    total_s: float
    refined: bool


def _percentile(values: list[float], pct: float) -> float | None:
    """The shared percentile, or None for a window with no requests."""
    return percentile(values, pct) if values else None


class ServingMetrics:
    """Thread-safe accumulator; ``report()`` returns a window and starts a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mean_latency_s: float | None = None
        self._completed_at: collections.deque[float] = collections.deque(maxlen=32)
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self._since = now
        self._samples: list[RequestSample] = []
        self._errors = 0
        self._rejected = 0

    def record(self, sample: RequestSample) -> None:
        """Count one answered request."""
        with self._lock:
            self._samples.append(sample)
            self._completed_at.append(time.monotonic())
            previous = self._mean_latency_s
            self._mean_latency_s = (
                sample.total_s if previous is None else 0.8 * previous + 0.2 * sample.total_s
            )

    def mean_latency_s(self) -> float | None:
        """A moving average of request latency (survives report windows), for Retry-After."""
        return self._mean_latency_s

    def completion_rate(self) -> float | None:
        """Requests answered per second over the last (up to) 32 answers; None before two."""
        with self._lock:
            times = list(self._completed_at)
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    def record_error(self) -> None:
        """Count a request that failed inside the model."""
        with self._lock:
            self._errors += 1

    def record_rejected(self) -> None:
        """Count a request refused because the queue was full."""
        with self._lock:
            self._rejected += 1

    def report(self, model_id: str | None) -> MetricsBody:
        """The metrics body for the window that ends now."""
        now = time.monotonic()
        with self._lock:
            samples, errors, rejected, since = (
                self._samples,
                self._errors,
                self._rejected,
                self._since,
            )
            self._reset(now)
        generated = sum(s.generated_tokens for s in samples)
        decode_s = sum(s.decode_s for s in samples)
        ttft = [s.ttft_s * 1000 for s in samples]
        latency = [s.total_s * 1000 for s in samples]
        return MetricsBody(
            window_s=now - since,
            model_id=model_id,
            requests=len(samples),
            refined_requests=sum(1 for s in samples if s.refined),
            errors=errors,
            rejected=rejected,
            prompt_tokens=sum(s.prompt_tokens for s in samples),
            generated_tokens=generated,
            decode_tok_s=generated / decode_s if decode_s > 0 else None,
            ttft_ms_p50=_percentile(ttft, 50),
            ttft_ms_p95=_percentile(ttft, 95),
            latency_ms_p50=_percentile(latency, 50),
            latency_ms_p95=_percentile(latency, 95),
        )
