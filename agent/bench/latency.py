"""Answer latency of a benchmark: p50/p95 time to first token and end to end, per mode."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from agent.inference.refine import RefinementResult
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


def answer_latency(results: Sequence[RefinementResult], *, refined: bool) -> AnswerLatency | None:
    """Zero-shot: the first stage alone. Refined: until the served answer starts, and in total."""
    if not results:
        return None
    if not refined:
        stages = [r.stages[0] for r in results]
        return latency(
            [s.ttft_s for s in stages],
            [s.total_s for s in stages],
            [s.generated_tokens for s in stages],
        )
    ttft = [sum(s.total_s for s in r.stages[:-1]) + r.stages[-1].ttft_s for r in results]
    return latency(ttft, [r.total_s for r in results], [r.generated_tokens for r in results])
