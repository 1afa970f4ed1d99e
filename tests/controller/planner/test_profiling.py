import functools

import numpy as np
import pytest
from scipy.stats import binomtest

from controller.planner.mix import MixCandidate, cheapest_mix
from controller.planner.profiling import (
    PairOutlook,
    ProfilingRule,
    Verdict,
    clopper_pearson,
    decide,
    next_pairs,
)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (45, 60), (1, 1)])
def test_clopper_pearson_matches_scipys_exact_binomial_interval(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n, 0.95)
    assert low == pytest.approx(ci.low, abs=1e-9) and high == pytest.approx(ci.high, abs=1e-9)


def test_clopper_pearson_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(5, 3, 0.95)
    assert clopper_pearson(0, 0, 0.95) == (0.0, 1.0)


@functools.cache
def _decide(k: int, n: int, rule: ProfilingRule):
    return decide(k, n, rule)  # (k, n) repeat across simulated runs: same answer, computed once


def run_profile(true_acc: float, rule: ProfilingRule, rng: np.random.Generator) -> tuple:
    k = n = 0
    while True:
        k += int(rng.binomial(rule.batch, true_acc))
        n += rule.batch
        step = _decide(k, n, rule)
        if step.verdict is not Verdict.CONTINUE:
            return step.verdict, n


def test_profiling_stops_early_once_the_bound_decides() -> None:
    rule = ProfilingRule(floor=0.5, batch=10, max_questions=200)
    rng = np.random.default_rng(1)
    good = [run_profile(0.95, rule, rng) for _ in range(50)]
    bad = [run_profile(0.05, rule, rng) for _ in range(50)]
    assert all(v is Verdict.ACCEPT for v, _ in good)
    assert all(v is Verdict.REJECT for v, _ in bad)
    assert max(n for _, n in good + bad) <= 40  # far fewer than the 200 allowed


def test_decide_reports_bounds_and_the_floor() -> None:
    step = decide(20, 20, ProfilingRule(floor=0.7, batch=20, max_questions=100))
    assert step.verdict is Verdict.ACCEPT
    assert step.low >= 0.7 and "20/20 conforming" in step.reason


def test_floor_violation_rate_stays_below_one_minus_confidence() -> None:
    # The worst case for the guarantee: true accuracy just below the floor.
    rule = ProfilingRule(floor=0.8, confidence=0.9, batch=10, max_questions=300)
    rng = np.random.default_rng(2026)
    runs = 3000
    accepted = sum(run_profile(0.78, rule, rng)[0] is Verdict.ACCEPT for _ in range(runs))
    assert accepted / runs <= 1 - rule.confidence


_cp = functools.lru_cache(maxsize=None)(lambda k, n, c: clopper_pearson(k, n, c, one_sided=True))


def test_naive_repeated_looks_would_break_the_guarantee() -> None:
    # Why decide() splits the error budget over looks: without it the rate can exceed alpha.
    rng = np.random.default_rng(7)
    floor, alpha, violations, runs = 0.8, 0.1, 0, 3000
    for _ in range(runs):
        k = n = 0
        for _look in range(30):
            k += int(rng.binomial(10, 0.78))
            n += 10
            low, high = _cp(k, n, 1 - alpha)
            if low >= floor:
                violations += 1
                break
            if high < floor:
                break
    assert violations / runs > alpha


def test_profiling_stops_when_more_questions_cost_more_than_they_could_save() -> None:
    rule = ProfilingRule(floor=0.9, batch=10, max_questions=200)
    step = decide(6, 10, rule, cost_per_question=5.0, saving_if_accepted=10.0)
    assert step.verdict is Verdict.NOT_WORTH_IT and "expected saving" in step.reason
    assert decide(6, 10, rule, cost_per_question=0.0).verdict is Verdict.CONTINUE


def test_next_pairs_are_those_that_could_change_the_plan_most_per_cost() -> None:
    outlooks = [
        PairOutlook("a", "pi4", optimistic_psi=2.0, current_best_psi=2.5, devices=10, cost_s=1),
        PairOutlook("b", "pi4", optimistic_psi=3.0, current_best_psi=2.5, devices=10, cost_s=100),
        PairOutlook("c", "pi5", optimistic_psi=2.6, current_best_psi=2.5, devices=100, cost_s=10),
    ]
    assert [o.model_id for o in next_pairs(outlooks)] == ["c", "b"]


def test_mix_meets_the_target_at_least_cost_with_multiplied_confidences() -> None:
    cands = [
        MixCandidate("cheap", conforming=70, judged=100, cost=1.0),
        MixCandidate("mid", conforming=88, judged=100, cost=4.0),
        MixCandidate("ref", conforming=200, judged=200, cost=20.0),
    ]
    mix = cheapest_mix(cands, target=0.8, target_confidence=0.9)
    assert mix is not None
    assert sum(mix.ratios.values()) == pytest.approx(1.0)
    assert mix.guaranteed_accuracy >= 0.8 - 1e-9
    assert mix.per_bound_confidence**3 == pytest.approx(0.9)
    assert "ref" not in mix.ratios or mix.ratios["ref"] < 0.5
    assert mix.saving(reference_cost=20.0) > 2
    assert cheapest_mix(cands, target=0.999) is None


def test_mix_guarantee_holds_over_simulated_profiling_runs() -> None:
    rng = np.random.default_rng(11)
    true_acc = {"cheap": 0.62, "mid": 0.85, "big": 0.93}
    cost = {"cheap": 1.0, "mid": 3.0, "big": 10.0}
    target, conf, misses, solved = 0.8, 0.9, 0, 0
    for _ in range(1000):
        cands = [
            MixCandidate(m, int(rng.binomial(80, a)), 80, cost[m]) for m, a in true_acc.items()
        ]
        mix = cheapest_mix(cands, target, conf)
        if mix is None:
            continue
        solved += 1
        misses += sum(r * true_acc[m] for m, r in mix.ratios.items()) < target
    assert solved > 500
    assert misses / solved <= 1 - conf
