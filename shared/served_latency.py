"""End-to-end milliseconds of answers served with one strategy, as a bench measured them.

``direct`` is the bench's zero-shot latency. Another strategy's comes from the
device time of its own item rows (every stage it ran); an agent that predates
per-item strategies timed only ``refine:1``, in the bench's refined latency.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.messages import AnswerLatency, QuestionResult
from shared.stats import percentile
from shared.strategies import DIRECT, REFINE_1


def served_latency_ms(
    strategy: str,
    *,
    zero_shot: AnswerLatency | None,
    refined: AnswerLatency | None,
    questions: Iterable[QuestionResult],
) -> tuple[float, float] | None:
    """(p50, p95) of whole answers served with ``strategy``; None when it was not timed."""
    if strategy == DIRECT.name:
        return (zero_shot.e2e_ms_p50, zero_shot.e2e_ms_p95) if zero_shot else None
    if strategy == REFINE_1.name and refined is not None:
        return refined.e2e_ms_p50, refined.e2e_ms_p95
    times = [q.e2e_ms for q in questions if q.served_by == strategy]
    return (percentile(times, 50), percentile(times, 95)) if times else None
