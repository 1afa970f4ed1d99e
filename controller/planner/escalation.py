"""Calibrating the cascade: when the small model's answer goes on to a stronger one (pure, no I/O).

The small model answers every question with a confidence (its ``vote:k`` agreement, or
its own critique finding no error). Below a threshold the question is escalated: the
stronger model answers it too, and its answer is served. Calibration takes paired
per-item outcomes of both models on one suite and picks the threshold that costs the
least device time per answer while the cascade keeps its quality with a guarantee, as
SMART does (PERFICS.md section 5): the cascade's answer *conforms* on an item when it is
right or the strong model is wrong there too (it is no worse than always asking the
strong model); the exact Clopper-Pearson lower bound on the conforming share must reach
the floor at the configured confidence.

The guarantee holds for the threshold as a fixed choice; picking it among many
candidates on the same items is a multiple comparison, so a larger suite (or a held-out
one) is what makes the floor trustworthy rather than a stricter formula here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from controller.planner.profiling import clopper_pearson
from shared.messages import QuestionResult
from shared.quality import Interval
from shared.strategies import DIRECT

ESCALATE_ALL = 2.0
"""A threshold above every confidence (they lie in [0, 1]): every answer is escalated."""
RESAMPLES = 1000


@dataclass(frozen=True)
class PairedItem:
    """One suite item answered by both models: the small one's confidence and each one's cost."""

    confidence: float
    small_correct: bool
    strong_correct: bool
    small_s: float
    strong_s: float


@dataclass(frozen=True)
class ThresholdRow:
    """What the cascade does at one threshold (escalate when confidence < threshold)."""

    threshold: float
    escalated: int
    n: int
    correct: int
    conforming: int
    conforming_low: float
    """One-sided Clopper-Pearson lower bound on the conforming share."""
    retained: float | None
    """Cascade accuracy over the strong model's; None when the strong model got nothing right."""
    retained_interval: Interval | None
    device_s_per_answer: float
    strong_s_per_answer: float

    @property
    def share_escalated(self) -> float:
        """Escalated answers over all answers."""
        return self.escalated / self.n

    @property
    def accuracy(self) -> float:
        """The cascade's share of right answers."""
        return self.correct / self.n

    @property
    def saving(self) -> float:
        """Device-seconds per answer always using the strong model, over the cascade's."""
        return self.strong_s_per_answer / self.device_s_per_answer


@dataclass(frozen=True)
class Calibration:
    """Every candidate threshold's row and the cheapest that meets the floor (None: none does)."""

    rows: list[ThresholdRow]
    chosen: ThresholdRow | None
    floor: float
    confidence: float
    strong_accuracy: float

    @property
    def n(self) -> int:
        """Paired items the calibration stands on."""
        return self.rows[0].n


def paired_items(
    small: Iterable[QuestionResult], strong: Iterable[QuestionResult], *, strategy: str
) -> list[PairedItem]:
    """Items of one suite both models answered and were checked on, paired.

    The small model's rows served with ``strategy`` that carry a confidence, the strong
    one's ``direct`` rows; an item's last row on each side. Device-seconds are each row's
    measured answer time.
    """
    mine = {r.item_id: r for r in small if r.served_by == strategy and r.confidence is not None}
    theirs = {r.item_id: r for r in strong if r.served_by == DIRECT.name}
    paired = []
    for item_id, row in mine.items():
        other = theirs.get(item_id)
        if row.correct is None or other is None or other.correct is None:
            continue
        assert row.confidence is not None
        paired.append(
            PairedItem(
                row.confidence, row.correct, other.correct, row.e2e_ms / 1000, other.e2e_ms / 1000
            )
        )
    return paired


def candidate_thresholds(items: Sequence[PairedItem]) -> list[float]:
    """0 (never escalate), each distinct confidence above the least, and :data:`ESCALATE_ALL`."""
    distinct = sorted({item.confidence for item in items})
    return [0.0, *distinct[1:], ESCALATE_ALL]


def at_threshold(
    items: Sequence[PairedItem], threshold: float, *, confidence: float, seed: int = 0
) -> ThresholdRow:
    """The cascade's outcome, cost and guarantee when items below ``threshold`` escalate."""
    if not items:
        raise ValueError("calibration needs at least one paired item")
    escalate = np.array([item.confidence < threshold for item in items])
    small = np.array([item.small_correct for item in items])
    strong = np.array([item.strong_correct for item in items])
    cascade = np.where(escalate, strong, small)
    conforming = int(np.sum(cascade | ~strong))
    n = len(items)
    small_s = np.array([item.small_s for item in items])
    strong_s = np.array([item.strong_s for item in items])
    cost = float(small_s.sum() + strong_s[escalate].sum())
    retained, interval = _retained(cascade, strong, confidence, seed)
    return ThresholdRow(
        threshold=threshold,
        escalated=int(escalate.sum()),
        n=n,
        correct=int(cascade.sum()),
        conforming=conforming,
        conforming_low=clopper_pearson(conforming, n, confidence, one_sided=True)[0],
        retained=retained,
        retained_interval=interval,
        device_s_per_answer=cost / n,
        strong_s_per_answer=float(strong_s.sum()) / n,
    )


def calibrate(
    items: Sequence[PairedItem], *, floor: float, confidence: float = 0.95, seed: int = 0
) -> Calibration:
    """Every candidate threshold's row, and the cheapest whose bound reaches ``floor``.

    Cheapest: the least device-seconds per answer (ties: the lower threshold).
    """
    if not 0 < floor <= 1:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    rows = [
        at_threshold(items, t, confidence=confidence, seed=seed)
        for t in candidate_thresholds(items)
    ]
    meeting = [row for row in rows if row.conforming_low >= floor]
    chosen = min(meeting, key=lambda r: (r.device_s_per_answer, r.threshold), default=None)
    strong_accuracy = sum(item.strong_correct for item in items) / len(items)
    return Calibration(rows, chosen, floor, confidence, strong_accuracy)


def _retained(
    cascade: np.ndarray, strong: np.ndarray, confidence: float, seed: int
) -> tuple[float | None, Interval | None]:
    """Cascade accuracy over strong accuracy, with a paired percentile bootstrap interval."""
    if not strong.any():
        return None, None
    value = float(cascade.sum() / strong.sum())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(strong), size=(RESAMPLES, len(strong)))
    num, den = cascade[picks].sum(axis=1), strong[picks].sum(axis=1)
    ratios = num[den > 0] / den[den > 0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return value, Interval(float(low), float(high), confidence)
