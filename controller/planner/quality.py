"""Quality from per-question judge scores: q(m, k), B, I with bootstrap intervals, Table 3.

Definitions (PERFICS.md section 2, edgefleet's own reading of the seed paper):
``q(m, k)`` is the mean judge score of the candidate over the reference's on
the same questions of category ``k``; ``B`` aggregates the zero-shot ``q``
over categories with equal weights; ``I`` is the refined aggregate minus
``B``. A question whose judge reply was unparsable (score ``None``) is
missing on both sides, never 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from shared.messages import QuestionResult
from shared.perfics import aggregate_quality


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class QualityEstimate:
    """An aggregate quality with its sample size and interval."""

    value: float
    interval: Interval
    n_questions: int
    per_category: Mapping[str, float]


@dataclass(frozen=True)
class _Paired:
    """Per category: candidate scores, reference scores (same rows)."""

    cand: np.ndarray
    ref: np.ndarray


def _rows(questions: Iterable[QuestionResult], *, refined: bool) -> dict[str, _Paired]:
    cand: dict[str, list[float]] = defaultdict(list)
    ref: dict[str, list[float]] = defaultdict(list)
    for q in questions:
        if q.refined != refined or q.judge_score is None or q.reference_judge_score is None:
            continue
        cand[q.category].append(q.judge_score)
        ref[q.category].append(q.reference_judge_score)
    return {k: _Paired(np.asarray(cand[k]), np.asarray(ref[k])) for k in sorted(cand)}


def _matched(questions: Iterable[QuestionResult]) -> dict[str, tuple[np.ndarray, ...]]:
    """Per category: (y0, y1, reference) for question ids judged in both modes."""
    by_id: dict[tuple[str, str], dict[bool, QuestionResult]] = defaultdict(dict)
    for q in questions:
        if q.judge_score is not None and q.reference_judge_score is not None:
            by_id[(q.category, q.question_id)][q.refined] = q
    cols: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (category, _), modes in sorted(by_id.items()):
        if True in modes and False in modes:
            y0, y1 = modes[False], modes[True]
            ref = ((y0.reference_judge_score or 0.0) + (y1.reference_judge_score or 0.0)) / 2
            cols[category].append((y0.judge_score or 0.0, y1.judge_score or 0.0, ref))
    return {k: tuple(np.asarray(c) for c in zip(*v, strict=True)) for k, v in cols.items()}


def _boot_ratio(
    cand: np.ndarray, ref: np.ndarray, idx: np.ndarray
) -> np.ndarray:  # (R,) ratios of means over resampled rows
    return cand[idx].mean(axis=1) / ref[idx].mean(axis=1)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def baseline_quality(
    questions: Iterable[QuestionResult],
    *,
    refined: bool = False,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> QualityEstimate | None:
    """Equal-weight aggregate of ``q`` for one mode, bootstrap CI stratified by category."""
    rows = {k: p for k, p in _rows(questions, refined=refined).items() if p.ref.sum() > 0}
    if not rows:
        return None
    per_category = {k: float(p.cand.mean() / p.ref.mean()) for k, p in rows.items()}
    rng = np.random.default_rng(seed)
    boot = np.zeros(resamples)
    for p in rows.values():
        idx = rng.integers(0, len(p.cand), size=(resamples, len(p.cand)))
        boot += _boot_ratio(p.cand, p.ref, idx)
    low, high = _percentiles(boot / len(rows), confidence)
    return QualityEstimate(
        value=aggregate_quality(per_category),
        interval=Interval(low, high, confidence),
        n_questions=sum(len(p.cand) for p in rows.values()),
        per_category=per_category,
    )


def improvement_estimate(
    questions: Iterable[QuestionResult],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> QualityEstimate | None:
    """``I`` on questions judged in both modes, with a paired bootstrap CI."""
    cols = {k: c for k, c in _matched(questions).items() if c[2].sum() > 0}
    if not cols:
        return None
    per_category = {k: float((y1.mean() - y0.mean()) / r.mean()) for k, (y0, y1, r) in cols.items()}
    rng = np.random.default_rng(seed + 1)
    boot = np.zeros(resamples)
    for y0, y1, ref in cols.values():
        idx = rng.integers(0, len(y0), size=(resamples, len(y0)))
        boot += (y1[idx].mean(axis=1) - y0[idx].mean(axis=1)) / ref[idx].mean(axis=1)
    low, high = _percentiles(boot / len(cols), confidence)
    return QualityEstimate(
        value=aggregate_quality(per_category),
        interval=Interval(low, high, confidence),
        n_questions=sum(len(c[0]) for c in cols.values()),
        per_category=per_category,
    )


def conformance_counts(
    questions: Iterable[QuestionResult], *, refined: bool
) -> dict[str, tuple[int, int]]:
    """Per category (conforming, judged): conforming = exact match, else judge >= reference."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for q in questions:
        if q.refined != refined:
            continue
        if q.exact_correct is not None:
            ok = q.exact_correct
        elif q.judge_score is not None and q.reference_judge_score is not None:
            ok = q.judge_score >= q.reference_judge_score
        else:
            continue
        counts[q.category][0] += int(ok)
        counts[q.category][1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}
