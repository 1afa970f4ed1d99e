"""Answer latency of a benchmark: p50/p95 time to first token and end to end, per mode."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from agent.inference.strategies import StrategyResult
from shared.messages import AnswerLatency
from shared.stats import percentile


def latency(
    ttft_s: Sequence[float], e2e_s: Sequence[float], tokens: Sequence[int]
) -> AnswerLatency:
    """p50/p95 of time to first token and end-to-end time, in milliseconds."""
    return AnswerLatency(
        ttft_ms_p50=percentile(ttft_s, 50) * 1000,
        ttft_ms_p95=percentile(ttft_s, 95) * 1000,
        e2e_ms_p50=percentile(e2e_s, 50) * 1000,
        e2e_ms_p95=percentile(e2e_s, 95) * 1000,
        generated_tokens_mean=statistics.fmean(tokens),
        n=len(e2e_s),
    )


def answer_latency(results: Sequence[StrategyResult]) -> AnswerLatency | None:
    """Until the served answer starts (every earlier stage, then its first token), and in total."""
    if not results:
        return None
    ttft = []
    for result in results:
        gens = [s.generation for s in result.stages]
        ttft.append(sum(g.total_s for g in gens[:-1]) + gens[-1].ttft_s)
    return latency(ttft, [r.total_s for r in results], [r.generated_tokens for r in results])
