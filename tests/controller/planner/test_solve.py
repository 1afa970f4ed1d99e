import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_array

from controller.planner.solve import solve_counts
from controller.planner.types import PlannerSettings

EXACT = PlannerSettings(milp_rel_gap=1e-9)


def _program(sizes, gains, lows, floor):
    """Groups of sizes[g] devices, options with gain and a quality low; one floor row."""
    n_opt = len(gains)
    n_var = len(sizes) * n_opt
    rows = [[1.0 if v // n_opt == g else 0.0 for v in range(n_var)] for g in range(len(sizes))]
    rows.append([lows[v % n_opt] - floor for v in range(n_var)])
    lb = np.array([*sizes, 0.0])
    ub = np.array([*sizes, np.inf])
    gain = np.array([gains[v % n_opt] * (1 + 0.01 * (v // n_opt)) for v in range(n_var)])
    return gain, csr_array(np.array(rows)), lb, ub, np.array([v // n_opt for v in range(n_var)])


def _brute(gain, sizes, lows, floor, n_opt):
    best = None
    per_group = [
        [c for c in itertools.product(range(s + 1), repeat=n_opt) if sum(c) == s] for s in sizes
    ]
    for combo in itertools.product(*per_group):
        x = np.array([v for c in combo for v in c])
        if sum(x[v] * (lows[v % n_opt] - floor) for v in range(len(x))) < -1e-9:
            continue
        value = float(gain @ x)
        best = value if best is None else max(best, value)
    return best


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.lists(st.floats(1.0, 3.0), min_size=2, max_size=3),
    st.data(),
)
def test_lp_then_repair_matches_brute_force(sizes, gains, data) -> None:
    lows = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(gains), max_size=len(gains)))
    floor = data.draw(st.floats(0.0, 0.9))
    gain, a, lb, ub, groups = _program(sizes, gains, lows, floor)
    out = solve_counts(gain, a, lb, ub, groups, EXACT)
    best = _brute(gain, sizes, lows, floor, len(gains))
    if best is None:
        assert out.counts is None and out.status.startswith("infeasible")
        return
    assert out.counts is not None and out.status == "optimal"
    assert abs(float(gain @ out.counts) - best) < 1e-6
    assert out.bound is not None and out.bound >= best - 1e-6  # the LP bound is an upper bound


def test_fractional_lp_is_repaired_to_integers() -> None:
    # 3 devices, A (gain 2, low 0.2) or B (gain 1, low 0.9), floor 0.5: the LP wants 9/7 on B.
    gain, a, lb, ub, groups = _program([3], [2.0, 1.0], [0.2, 0.9], 0.5)
    out = solve_counts(gain, a, lb, ub, groups, EXACT)
    assert out.counts is not None and out.counts.tolist() == [1, 2]
    assert out.bound is not None and out.bound > float(gain @ out.counts)
