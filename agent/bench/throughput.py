"""llama-bench-style throughput: prompt processing (pp) and text generation (tg) tokens/s."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.messages import Spread


class Timeable(Protocol):
    """What throughput needs from a runtime."""

    def time_prefill(self, n_tokens: int) -> float:
        """Seconds to evaluate a prompt of ``n_tokens``."""
        ...

    def time_decode(self, n_tokens: int) -> float:
        """Seconds to decode ``n_tokens`` one by one."""
        ...


@dataclass(frozen=True)
class Throughput:
    """Repeated pp and tg measurements, in tokens per second."""

    pp_tokens: int
    tg_tokens: int
    prefill_tok_s: Spread
    decode_tok_s: Spread


def spread(values: Sequence[float]) -> Spread:
    """Mean and sample standard deviation (0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(mean=statistics.fmean(values), std=std, n=len(values))


def measure(
    runtime: Timeable, *, pp_tokens: int = 128, tg_tokens: int = 64, repetitions: int = 3
) -> Throughput:
    """Time pp and tg ``repetitions`` times each, after one untimed warm-up of each."""
    runtime.time_prefill(min(pp_tokens, 16))
    runtime.time_decode(min(tg_tokens, 4))
    pp = [pp_tokens / runtime.time_prefill(pp_tokens) for _ in range(repetitions)]
    tg = [tg_tokens / runtime.time_decode(tg_tokens) for _ in range(repetitions)]
    return Throughput(pp_tokens, tg_tokens, spread(pp), spread(tg))
