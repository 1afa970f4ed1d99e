"""SMART-style profiling: exact binomial bounds and which (model, class) pairs to profile next.

Adapted in edgefleet's own words from Jo and Trummer's SMART (arXiv
2403.13835), see PERFICS.md section 5. A candidate *conforms* on a question
when it is judged at least as good as the reference (or matches the exact
answer); the conforming count ``k`` of ``n`` is bounded with the
Clopper-Pearson interval (the fleet's quality floors use its lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass

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
