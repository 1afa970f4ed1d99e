"""SMART-style profiling: exact binomial bounds, early stop, what to profile next, cheapest mix.

Adapted in edgefleet's own words from Jo and Trummer's SMART (arXiv
2403.13835), see PERFICS.md section 5. A candidate *conforms* on a question
when it is judged at least as good as the reference (or matches the exact
answer). After each batch the conforming count ``k`` of ``n`` is bounded with
the Clopper-Pearson interval; the pair is accepted when the lower bound
reaches the floor and rejected when the upper bound falls below it.

One deviation from a naive reading, on purpose: checking the bound after
every batch is a sequential test, and repeated looks at a fixed confidence
would accept a below-floor pair more often than ``1 - confidence``. The
error budget is therefore split evenly over the planned number of looks
(Bonferroni), which keeps the guarantee at any stopping time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from scipy.stats import beta


def clopper_pearson(
    k: int, n: int, confidence: float, *, one_sided: bool = False
) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials; one-sided puts all error per side."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return 0.0, 1.0
    alpha = 1 - confidence if one_sided else (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return low, high


class Verdict(StrEnum):
    """The outcome of one look at a pair's profiling so far."""

    ACCEPT = "accept"
    REJECT = "reject"
    CONTINUE = "continue"
    NOT_WORTH_IT = "not-worth-it"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class ProfilingRule:
    """Floor, confidence and budget of one profiling campaign."""

    floor: float
    confidence: float = 0.95
    batch: int = 10
    max_questions: int = 200

    @property
    def looks(self) -> int:
        """How many times the bound may be checked."""
        return max(1, math.ceil(self.max_questions / self.batch))

    @property
    def per_look_confidence(self) -> float:
        """Each one-sided look spends an equal share of the error budget."""
        return 1 - (1 - self.confidence) / self.looks


@dataclass(frozen=True)
class ProfilingStep:
    """A verdict with the bounds that made it and a sentence for people."""

    verdict: Verdict
    low: float
    high: float
    reason: str


def decide(
    k: int,
    n: int,
    rule: ProfilingRule,
    *,
    cost_per_question: float = 0.0,
    saving_if_accepted: float = math.inf,
) -> ProfilingStep:
    """Accept, reject, stop because more would not pay, or continue."""
    c = rule.per_look_confidence
    low, high = clopper_pearson(k, n, c, one_sided=True)
    bounds = f"{k}/{n} conforming, bounds [{low:.3f}, {high:.3f}] at {c:.4f} per look"
    if n and low >= rule.floor:
        return ProfilingStep(Verdict.ACCEPT, low, high, f"accepted: {bounds} >= {rule.floor}")
    if n and high < rule.floor:
        return ProfilingStep(Verdict.REJECT, low, high, f"rejected: {bounds} < {rule.floor}")
    if n >= rule.max_questions:
        return ProfilingStep(Verdict.EXHAUSTED, low, high, f"undecided after {n}: {bounds}")
    remaining = rule.max_questions - n
    expected_cost = remaining * cost_per_question
    gain = acceptance_probability(k, n, rule.floor) * saving_if_accepted
    if expected_cost > gain:
        return ProfilingStep(
            Verdict.NOT_WORTH_IT,
            low,
            high,
            f"stopped: profiling up to {remaining} more costs {expected_cost:.3g}, "
            f"expected saving {gain:.3g}; {bounds}",
        )
    return ProfilingStep(Verdict.CONTINUE, low, high, f"continue: {bounds}")


def acceptance_probability(k: int, n: int, floor: float) -> float:
    """P(true accuracy >= floor) under a uniform prior: a cheap value-of-information weight."""
    return float(beta.sf(floor, k + 1, n - k + 1))


@dataclass(frozen=True)
class PairOutlook:
    """What profiling a (model, class) pair could do to the plan."""

    model_id: str
    device_class: str
    optimistic_psi: float
    current_best_psi: float
    devices: int
    cost_s: float
    basis: str = ""
    """Where the optimistic quality came from, for people."""

    @property
    def value(self) -> float:
        """Possible Psi gain over the class, per second of profiling."""
        gain = max(0.0, self.optimistic_psi - self.current_best_psi) * self.devices
        return gain / max(self.cost_s, 1e-9)

    def reason(self) -> str:
        """Why this pair is worth profiling, with the numbers."""
        return (
            f"{self.model_id} on {self.device_class}: optimistic Psi {self.optimistic_psi:.3f} "
            f"({self.basis or 'upper bounds'}) beats the class's best measured "
            f"{self.current_best_psi:.3f}; {self.devices} device(s), ~{self.cost_s:.0f} s "
            "to profile"
        )


def next_pairs(outlooks: list[PairOutlook], limit: int = 5) -> list[PairOutlook]:
    """Pairs whose optimistic score beats their class's best, most plan-changing per cost first."""
    useful = [o for o in outlooks if o.optimistic_psi > o.current_best_psi and o.devices > 0]
    useful.sort(key=lambda o: (-o.value, o.device_class, o.model_id))
    return useful[:limit]
