import math

import pytest
from pydantic import ValidationError

from shared.perfics import (
    PerficsWeights,
    aggregate_quality,
    latency_cost,
    memory_cost,
    perfics_score,
)


def test_defaults_are_those_of_perfics_md() -> None:
    w = PerficsWeights()
    assert (w.eta, w.kappa, w.alpha, w.beta, w.gamma, w.rho, w.delta) == (1, 1, 1, 1, 0.1, 0.25, 0)


def test_default_score_reduces_to_exp_of_quality_minus_tenth_of_cost() -> None:
    # B = 0.8, I = 0.1, E = 0, C = 0.5  ->  exp(0.9 - 0.05)
    assert perfics_score(0.8, 0.1, 0.0, 0.5) == pytest.approx(math.exp(0.85))


def test_hand_computed_case_with_every_weight_set() -> None:
    w = PerficsWeights(eta=2, kappa=0.5, alpha=1.5, beta=2, gamma=1, rho=0.4, delta=0.3)
    b, i, e, c = 0.6, -0.1, 0.5, 2.0
    numerator = 2 * math.exp(0.5 * (1.5 * 0.6 + 2 * -0.1)) + 0.4 * 0.5  # 2*e^0.35 + 0.2
    denominator = math.exp(2.0) + 0.3
    assert perfics_score(b, i, e, c, w) == pytest.approx(numerator / denominator)
    assert perfics_score(b, i, e, c, w) == pytest.approx(0.39512, abs=1e-4)  # 3.03814 / 7.68906


def test_refinement_that_hurts_lowers_the_score() -> None:
    assert perfics_score(0.8, -0.05, 0, 1) < perfics_score(0.8, 0.0, 0, 1)


def test_the_paper_example_of_perfics_md_prefers_the_better_slower_model() -> None:
    small = perfics_score(0.30, 0.0, 0.0, latency_cost(3, 60))
    larger = perfics_score(0.60, 0.0, 0.0, latency_cost(40, 60))
    assert larger > small


def test_weights_are_frozen_and_refuse_unknown_fields() -> None:
    w = PerficsWeights()
    with pytest.raises(ValidationError):
        w.gamma = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        PerficsWeights(gama=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PerficsWeights(delta=-1)


@pytest.mark.parametrize(
    ("args", "message"),
    [((0.5, 0, 1.5, 0), "extrinsic"), ((0.5, 0, 0, -1), "cost"), ((math.nan, 0, 0, 0), "baseline")],
)
def test_out_of_range_terms_are_refused(
    args: tuple[float, float, float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        perfics_score(*args)


def test_quality_helpers() -> None:
    assert aggregate_quality({"math": 0.5, "writing": 1.0}) == pytest.approx(0.75)
    assert aggregate_quality(
        {"math": 0.5, "writing": 1.0}, {"math": 1, "writing": 3}
    ) == pytest.approx(0.875)
    assert latency_cost(30, 60) == 0.5
    assert memory_cost(1.5e9) == 1.5
