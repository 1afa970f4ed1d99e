"""The cheapest traffic mix over models that meets an accuracy target with a given confidence.

SMART's mixing step in edgefleet's words (PERFICS.md section 5): ratios
``r`` (sum 1) with ``sum r_m * a_m >= target`` where ``a_m`` is a lower bound
on model m's accuracy, at least cost. Every candidate's bound is taken at
confidence ``target_confidence ** (1 / M)`` for M candidates, so the
confidences of the bounds used multiply to at least the target whatever
subset the LP picks. In a fleet, r is the share of devices or requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from controller.planner.profiling import clopper_pearson


@dataclass(frozen=True)
class MixCandidate:
    """A model's profiling record and its cost per request (device seconds)."""

    model_id: str
    conforming: int
    judged: int
    cost: float


@dataclass(frozen=True)
class Mix:
    """Ratios per model, the guaranteed accuracy, and cost against the reference's."""

    ratios: dict[str, float]
    guaranteed_accuracy: float
    cost: float
    per_bound_confidence: float

    def saving(self, reference_cost: float) -> float:
        """How many times cheaper than always serving the reference."""
        return reference_cost / self.cost if self.cost > 0 else float("inf")


def cheapest_mix(
    candidates: Sequence[MixCandidate], target: float, target_confidence: float = 0.95
) -> Mix | None:
    """Solve the LP; None when even the best bound cannot reach the target."""
    if not candidates:
        return None
    ordered = sorted(candidates, key=lambda c: c.model_id)
    per_bound = target_confidence ** (1 / len(ordered))
    lows = np.array(
        [clopper_pearson(c.conforming, c.judged, per_bound, one_sided=True)[0] for c in ordered]
    )
    costs = np.array([c.cost for c in ordered])
    res = linprog(
        costs,
        A_ub=-lows[np.newaxis, :],
        b_ub=[-target],
        A_eq=np.ones((1, len(ordered))),
        b_eq=[1.0],
        bounds=[(0, 1)] * len(ordered),
        method="highs",
    )
    if not res.success:
        return None
    ratios = {c.model_id: float(r) for c, r in zip(ordered, res.x, strict=True) if r > 1e-9}
    return Mix(
        ratios=ratios,
        guaranteed_accuracy=float(lows @ res.x),
        cost=float(costs @ res.x),
        per_bound_confidence=per_bound,
    )
