"""Quality from per-item rows: B and I with intervals, accuracy, paired comparisons, Table 3.

The one computation the planner, the leaderboard, the bench report, the CLI and
the dashboard use (PERFICS.md section 2, edgefleet's reading of the seed paper).
An item's score is its judge score (judged, 1-10) or 1/0 for right/wrong
(exact; choice by acc). Items are grouped in strata: a category within one
item type (``"math"`` for judged items, ``"exact:math"`` for exact ones).
``q(m, s)`` is the candidate's mean score over the reference's on the same
items of stratum ``s``; ``B`` is the equal-weight mean of the zero-shot ``q``;
``I`` the refined aggregate minus ``B``, on items answered in both modes. A
judge reply that could not be parsed is *missing* on both sides, never 0.
Intervals are percentile bootstraps over items, stratified, paired where
the comparison is; a resample in which the reference scores 0 has no ratio
and is left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean

import numpy as np

from shared.messages import CategoryQuality, QuestionResult
from shared.perfics import aggregate_quality
from shared.strategies import DIRECT, canonical

RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float
    confidence: float

    def overlaps(self, other: Interval) -> bool:
        """True when the two intervals share a point: the difference is not shown."""
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class QualityEstimate:
    """An aggregate quality with its sample size and interval."""

    value: float
    interval: Interval
    n_questions: int
    per_category: Mapping[str, float]


@dataclass(frozen=True)
class Accuracy:
    """A share of items answered right, with a Wilson interval."""

    value: float
    interval: Interval
    n: int


@dataclass(frozen=True)
class PairedComparison:
    """Refined minus zero-shot on the same items: mean difference, paired bootstrap interval.

    For exact and choice items ``mcnemar_p`` is the exact McNemar test's two-sided p-value
    (``better``: right only when refined; ``worse``: right only zero-shot).
    """

    difference: float
    interval: Interval
    n: int
    better: int | None = None
    worse: int | None = None
    mcnemar_p: float | None = None


def stratum(row: QuestionResult) -> str:
    """The group an item is compared in: its category, within its type."""
    return row.category if row.type == "judged" else f"{row.type}:{row.category}"


def score(row: QuestionResult) -> float | None:
    """The candidate's score on the item; None when missing."""
    if row.type == "judged":
        return row.judge_score
    return None if row.correct is None else float(row.correct)


def reference_score(row: QuestionResult) -> float | None:
    """The reference model's score on the same item; None when missing."""
    if row.type == "judged":
        return row.reference_judge_score
    return None if row.reference_correct is None else float(row.reference_correct)


def _interval(samples: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2 * 100
    kept = samples[~np.isnan(samples)]
    low, high = np.percentile(kept, [tail, 100 - tail])
    return Interval(float(low), float(high), confidence)


def _pairs(
    rows: Iterable[QuestionResult], *, refined: bool
) -> dict[str, list[tuple[float, float]]]:
    """Per stratum: (candidate, reference) scores of items scored on both sides."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        cand, ref = score(row), reference_score(row)
        if row.refined == refined and cand is not None and ref is not None:
            out[stratum(row)].append((cand, ref))
    return {k: out[k] for k in sorted(out)}


def _ratio(pairs: Sequence[tuple[float, ...]], num: int, den: int) -> float:
    return sum(p[num] for p in pairs) / sum(p[den] for p in pairs)


def versus_direct(rows: Iterable[QuestionResult], strategy: str) -> list[QuestionResult]:
    """``direct``'s rows as zero-shot and ``strategy``'s as refined.

    The paired statistics here (I, McNemar, bootstrap) then measure that
    strategy's gain over answering once, on the same items.
    """
    return [row.model_copy(update={"refined": mode}) for mode, row in _modes(rows, strategy)]


def _modes(
    rows: Iterable[QuestionResult], strategy: str | None
) -> Iterable[tuple[bool, QuestionResult]]:
    """(refined?, row): by the rows' flag, or ``strategy`` against ``direct`` (others left out).

    The second form is :func:`versus_direct` without copying rows (the planner
    scores every strategy of every model).
    """
    if strategy is None:
        return ((row.refined, row) for row in rows)
    wanted = {DIRECT.name: False, canonical(strategy): True}
    return ((wanted[row.served_by], row) for row in rows if row.served_by in wanted)


def strategies_in(rows: Iterable[QuestionResult]) -> list[str]:
    """The strategies other than ``direct`` that rows were served by, in first-seen order."""
    return list(dict.fromkeys(r.served_by for r in rows if r.served_by != DIRECT.name))


def baseline_quality(
    rows: Iterable[QuestionResult],
    *,
    refined: bool = False,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> QualityEstimate | None:
    """Equal-weight aggregate of ``q`` for one mode, bootstrap interval stratified by stratum."""
    strata = {k: p for k, p in _pairs(rows, refined=refined).items() if sum(r for _, r in p) > 0}
    if not strata:
        return None
    per_stratum = {k: _ratio(p, 0, 1) for k, p in strata.items()}
    rng = np.random.default_rng(seed)
    boot = np.zeros(resamples)
    for pairs in strata.values():
        cand, ref = (np.asarray(col) for col in zip(*pairs, strict=True))
        idx = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
        boot += _ratios(cand[idx].sum(axis=1), ref[idx].sum(axis=1))
    boot /= len(strata)
    return QualityEstimate(
        value=aggregate_quality(per_stratum),
        interval=_interval(boot, confidence),
        n_questions=sum(len(p) for p in strata.values()),
        per_category=per_stratum,
    )


def _has_ref(pairs: Sequence[tuple[float, ...]]) -> bool:
    return sum(p[-1] for p in pairs) > 0


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per resample num/den; NaN where the reference scored 0 (no ratio)."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _matched(
    rows: Iterable[QuestionResult], strategy: str | None
) -> dict[str, list[tuple[float, float, float]]]:
    """Per stratum: (zero-shot, refined, reference) for items scored in both modes."""
    by_item: dict[tuple[str, str], dict[bool, QuestionResult]] = defaultdict(dict)
    for refined, row in _modes(rows, strategy):
        if score(row) is not None and reference_score(row) is not None:
            by_item[(stratum(row), row.item_id)][refined] = row
    out: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (key, _), modes in sorted(by_item.items()):
        if True in modes and False in modes:
            y0, y1 = modes[False], modes[True]
            ref = ((reference_score(y0) or 0.0) + (reference_score(y1) or 0.0)) / 2
            out[key].append((score(y0) or 0.0, score(y1) or 0.0, ref))
    return dict(out)


def _gain(triples: Sequence[tuple[float, ...]]) -> float:
    return _ratio(triples, 1, 2) - _ratio(triples, 0, 2)


def improvement_estimate(
    rows: Iterable[QuestionResult],
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
    strategy: str | None = None,
) -> QualityEstimate | None:
    """``I`` on items scored in both modes, with a paired, stratified bootstrap interval.

    ``strategy``: that strategy's gain over ``direct`` (as on :func:`versus_direct`'s rows).
    """
    strata = {k: t for k, t in _matched(rows, strategy).items() if _has_ref(t)}
    if not strata:
        return None
    per_stratum = {k: _gain(t) for k, t in strata.items()}
    rng = np.random.default_rng(seed + 1)
    boot = np.zeros(resamples)
    for triples in strata.values():
        y0, y1, ref = (np.asarray(col) for col in zip(*triples, strict=True))
        idx = rng.integers(0, len(triples), size=(resamples, len(triples)))
        boot += _ratios(y1[idx].sum(axis=1) - y0[idx].sum(axis=1), ref[idx].sum(axis=1))
    boot /= len(strata)
    return QualityEstimate(
        value=aggregate_quality(per_stratum),
        interval=_interval(boot, confidence),
        n_questions=sum(len(t) for t in strata.values()),
        per_category=per_stratum,
    )


def accuracy(
    rows: Iterable[QuestionResult],
    *,
    refined: bool = False,
    norm: bool = False,
    confidence: float = 0.95,
) -> Accuracy | None:
    """Share right among checked items of one mode (``norm``: choice's acc_norm)."""
    verdicts = [
        row.correct_norm if norm and row.type == "choice" else row.correct
        for row in rows
        if row.refined == refined
    ]
    checked = [v for v in verdicts if v is not None]
    if not checked:
        return None
    k, n = sum(checked), len(checked)
    low, high = wilson(k, n, confidence)
    return Accuracy(value=k / n, interval=Interval(low, high, confidence), n=n)


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_comparison(
    rows: Iterable[QuestionResult],
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedComparison | None:
    """Refined vs zero-shot on the same items (scores, not fractions of the reference)."""
    by_item: dict[tuple[str, str], dict[bool, float]] = defaultdict(dict)
    for row in rows:
        value = score(row)
        if value is not None:
            by_item[(row.type, row.item_id)][row.refined] = value
    pairs = [(m[False], m[True]) for m in by_item.values() if len(m) == 2]
    if not pairs:
        return None
    diffs = np.asarray([y1 - y0 for y0, y1 in pairs])
    rng = np.random.default_rng(seed + 2)
    boot = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    binary = all(y in (0.0, 1.0) for pair in pairs for y in pair)
    better = sum(y1 > y0 for y0, y1 in pairs) if binary else None
    worse = sum(y0 > y1 for y0, y1 in pairs) if binary else None
    return PairedComparison(
        difference=float(diffs.mean()),
        interval=_interval(boot, confidence),
        n=len(pairs),
        better=better,
        worse=worse,
        mcnemar_p=mcnemar(better, worse) if better is not None and worse is not None else None,
    )


def mcnemar(better: int, worse: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs (binomial, p = 1/2)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def conformance_counts(
    rows: Iterable[QuestionResult], *, refined: bool
) -> dict[str, tuple[int, int]]:
    """Per category (conforming, scored): right when checkable, else judged >= the reference."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.refined != refined:
            continue
        if row.correct is not None:
            ok = row.correct
        elif row.judge_score is not None and row.reference_judge_score is not None:
            ok = row.judge_score >= row.reference_judge_score
        else:
            continue
        counts[row.category][0] += int(ok)
        counts[row.category][1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}


def category_rows(rows: Sequence[QuestionResult]) -> list[CategoryQuality]:
    """One row per (stratum, strategy): judge mean, missing ratings, accuracy, % of reference."""
    groups: dict[tuple[str, str], list[QuestionResult]] = defaultdict(list)
    for row in rows:
        groups[(stratum(row), row.served_by)].append(row)
    reference = {k: fmean(r for _, r in p) for k, p in _pairs(rows, refined=False).items()}
    out = []
    for (key, strategy), group in sorted(groups.items()):
        mean = _mean(score(r) for r in group)
        checked = [r.correct for r in group if r.correct is not None]
        ref = reference.get(key)
        out.append(
            CategoryQuality(
                category=group[0].category,
                type=group[0].type,
                refined=group[0].refined,
                strategy=strategy,
                n=len(group),
                judge_mean=_mean(r.judge_score for r in group),
                judge_missing=sum(r.type == "judged" and r.judge_score is None for r in group),
                exact_accuracy=sum(checked) / len(checked) if checked else None,
                pct_of_reference=100 * mean / ref if mean is not None and ref else None,
            )
        )
    return out


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


@dataclass(frozen=True)
class Table3Row:
    """One model's row of the seed paper's Table 3: % of reference per category and mode."""

    model_id: str
    zero_shot_pct: Mapping[str, float]
    refined_pct: Mapping[str, float]

    @property
    def mean_zero_shot(self) -> float:
        """'Mean (Eq Weight)' of the zero-shot column."""
        return aggregate_quality(self.zero_shot_pct)

    @property
    def mean_refined(self) -> float:
        """'Mean (Eq Weight)' of the refined column."""
        return aggregate_quality(self.refined_pct)


def table3_row(model_id: str, rows: Iterable[QuestionResult]) -> Table3Row:
    """The Table-3 view of one model from per-item scores."""
    items = list(rows)
    pct = {
        refined: {
            k: 100 * _ratio(p, 0, 1)
            for k, p in _pairs(items, refined=refined).items()
            if _has_ref(p)
        }
        for refined in (False, True)
    }
    return Table3Row(model_id=model_id, zero_shot_pct=pct[False], refined_pct=pct[True])
