"""Per-category quality, as in the seed paper's Table 3: judge means and % of a reference."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from agent.inference.refine import RefinementResult
from shared.messages import AnswerLatency, CategoryQuality, QuestionResult
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


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def reference_means(results: Sequence[QuestionResult]) -> dict[str, float]:
    """The reference model's mean judge score per category (zero-shot results)."""
    by_category: dict[str, list[float | None]] = {}
    for result in results:
        by_category.setdefault(result.category, []).append(result.reference_judge_score)
    means = {cat: _mean(scores) for cat, scores in by_category.items()}
    return {cat: mean for cat, mean in means.items() if mean is not None}


def categories(
    results: Sequence[QuestionResult], reference: Mapping[str, float] | None = None
) -> list[CategoryQuality]:
    """One row per (category, mode): judge mean, missing ratings, exact accuracy, % of reference."""
    groups: dict[tuple[str, bool], list[QuestionResult]] = {}
    for result in results:
        groups.setdefault((result.category, result.refined), []).append(result)
    rows = []
    for (category, refined), group in sorted(groups.items()):
        judge_mean = _mean([r.judge_score for r in group])
        exact = [r.exact_correct for r in group if r.exact_correct is not None]
        ref = (reference or {}).get(category)
        rows.append(
            CategoryQuality(
                category=category,
                refined=refined,
                n=len(group),
                judge_mean=judge_mean,
                judge_missing=sum(r.judge_score is None for r in group),
                exact_accuracy=sum(exact) / len(exact) if exact else None,
                pct_of_reference=100 * judge_mean / ref if judge_mean is not None and ref else None,
            )
        )
    return rows


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
