import pytest
from scipy.stats import binomtest

from controller.planner.profiling import PairOutlook, clopper_pearson, next_pairs


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (45, 60), (1, 1)])
def test_clopper_pearson_matches_scipys_exact_binomial_interval(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n, 0.95)
    assert low == pytest.approx(ci.low, abs=1e-9) and high == pytest.approx(ci.high, abs=1e-9)


def test_clopper_pearson_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(5, 3, 0.95)
    assert clopper_pearson(0, 0, 0.95) == (0.0, 1.0)


def test_next_pairs_are_those_that_could_change_the_plan_most_per_cost() -> None:
    outlooks = [
        PairOutlook("a", "pi4", optimistic_psi=2.0, current_best_psi=2.5, devices=10, cost_s=1),
        PairOutlook("b", "pi4", optimistic_psi=3.0, current_best_psi=2.5, devices=10, cost_s=100),
        PairOutlook("c", "pi5", optimistic_psi=2.6, current_best_psi=2.5, devices=100, cost_s=10),
    ]
    assert [o.model_id for o in next_pairs(outlooks)] == ["c", "b"]
