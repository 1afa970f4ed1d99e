"""Integer counts for the fleet program: the LP relaxation, then a MILP where it is fractional.

The program is an assignment of device groups to options plus a handful of
coupling rows (minimum counts, quality floors, the change cap), so a basic
optimal solution of its LP relaxation is integral except in at most as many
groups as there are coupling rows. Those few groups are re-solved as a MILP
with everything else fixed; the LP optimum bounds the true optimum from
above, so the result comes with a certified gap. Only when that gap exceeds
the configured tolerance (or fixing makes the rest infeasible) does the full
MILP run, under its time limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array, vstack

from controller.planner.types import PlannerSettings

logger = logging.getLogger(__name__)
INTEGRAL_TOL = 1e-6


@dataclass(frozen=True)
class Outcome:
    """Counts per variable (None: no solution), status text, certified gap, LP bound."""

    counts: np.ndarray | None
    status: str
    gap: float | None
    bound: float | None


def _milp(
    gain: np.ndarray,
    a: csr_array,
    lb: np.ndarray,
    ub: np.ndarray,
    settings: PlannerSettings,
):  # noqa: ANN202 - scipy result
    return milp(
        -gain,
        constraints=LinearConstraint(a, lb, ub),
        integrality=np.ones(len(gain)),
        bounds=Bounds(0, np.inf),
        options={"mip_rel_gap": settings.milp_rel_gap, "time_limit": settings.milp_time_limit_s},
    )


def _relaxation(gain: np.ndarray, a: csr_array, lb: np.ndarray, ub: np.ndarray):  # noqa: ANN202 - scipy result
    """The LP relaxation by HiGHS's interior point with crossover: a basic solution.

    On the fleet program it is about twice as fast as the dual simplex that
    ``milp`` uses for a relaxation (bench/planner.py), and crossover makes the
    solution a vertex, which the few-fractional-groups argument needs.
    """
    eq = lb == ub
    ineq = np.flatnonzero(~eq)
    upper, lower = ineq[np.isfinite(ub[ineq])], ineq[np.isfinite(lb[ineq])]
    coupled = len(upper) + len(lower) > 0
    return linprog(
        -gain,
        A_ub=vstack([a[upper], -a[lower]], format="csr") if coupled else None,
        b_ub=np.concatenate([ub[upper], -lb[lower]]) if coupled else None,
        A_eq=a[np.flatnonzero(eq)],
        b_eq=lb[eq],
        bounds=(0, None),
        method="highs-ipm",
    )


def _gap(bound: float, value: float) -> float:
    return max(0.0, (bound - value) / max(abs(bound), 1e-12))


def solve_counts(
    gain: np.ndarray,
    a: csr_array,
    lb: np.ndarray,
    ub: np.ndarray,
    var_group: np.ndarray,
    settings: PlannerSettings,
) -> Outcome:
    """Maximise ``gain @ x`` over non-negative integers with ``lb <= a @ x <= ub``."""
    lp = _relaxation(gain, a, lb, ub)
    if lp.status == 2:
        return Outcome(None, "infeasible: even the LP relaxation is infeasible", None, None)
    if lp.x is None:
        return _full(gain, a, lb, ub, settings, None)
    x, bound = lp.x, float(gain @ lp.x)
    fractional = np.abs(x - np.rint(x)) > INTEGRAL_TOL
    if not fractional.any():
        return Outcome(np.rint(x).astype(int), "optimal", 0.0, bound)
    repaired = _repair(gain, a, lb, ub, var_group, x, fractional, settings)
    if repaired is not None and _gap(bound, float(gain @ repaired)) <= settings.milp_rel_gap:
        return Outcome(repaired, "optimal", _gap(bound, float(gain @ repaired)), bound)
    logger.info("fleet LP repair not within the gap; solving the full MILP")
    return _full(gain, a, lb, ub, settings, bound)


def _repair(
    gain: np.ndarray,
    a: csr_array,
    lb: np.ndarray,
    ub: np.ndarray,
    var_group: np.ndarray,
    x: np.ndarray,
    fractional: np.ndarray,
    settings: PlannerSettings,
) -> np.ndarray | None:
    """Fix every group the LP solved integrally; solve the rest as a (small) MILP."""
    free = np.isin(var_group, np.unique(var_group[fractional]))
    fixed = np.where(free, 0.0, np.rint(x))
    shift = a @ fixed
    sub = csr_array(a[:, np.flatnonzero(free)])
    used = np.diff(sub.indptr) > 0
    lo, hi = lb - shift, ub - shift
    if np.any(lo[~used] > INTEGRAL_TOL) or np.any(hi[~used] < -INTEGRAL_TOL):
        return None
    res = _milp(gain[free], csr_array(sub[np.flatnonzero(used)]), lo[used], hi[used], settings)
    if res.x is None:
        return None
    counts = np.rint(fixed).astype(int)
    counts[free] = np.rint(res.x).astype(int)
    return counts


def _full(
    gain: np.ndarray,
    a: csr_array,
    lb: np.ndarray,
    ub: np.ndarray,
    settings: PlannerSettings,
    bound: float | None,
) -> Outcome:
    res = _milp(gain, a, lb, ub, settings)
    if res.x is None:
        kind = "infeasible" if res.status == 2 else "no solution"
        return Outcome(None, f"{kind}: {res.message}", None, bound)
    counts = np.rint(res.x).astype(int)
    status = "optimal" if res.status == 0 else f"stopped: {res.message}"
    gap = getattr(res, "mip_gap", None)  # HiGHS's own gap: tighter than the LP bound's
    return Outcome(counts, status, gap, bound)
