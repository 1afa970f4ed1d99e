import pytest

from controller.planner.quality import (
    baseline_quality,
    conformance_counts,
    improvement_estimate,
)
from shared.messages import QuestionResult
from tests.factories.planner import questions_for, table3

# The seed paper's "Mean (Eq Weight)" row (zero-shot, refined), % of ChatGPT.
PAPER_MEAN_ROW = {
    "Airoboros-7B": (81.60, 79.64),
    "Vicuna-7B": (84.18, 92.96),
    "Vicuna-13B": (88.72, 95.62),
    "GPT4X-Alpasta-30B": (90.28, 98.85),
    "Guanaco-65B": (94.19, 98.99),
}


def _pct(model: str) -> dict[str, tuple[float, float]]:
    return {k: (v[1], v[2]) for k, v in table3()[model].items()}


@pytest.mark.parametrize("model", sorted(PAPER_MEAN_ROW))
def test_baseline_quality_reproduces_the_seed_papers_mean_eq_weight_row(model: str) -> None:
    questions = questions_for(_pct(model), seed=7)
    for refined, paper_mean in zip((False, True), PAPER_MEAN_ROW[model], strict=True):
        est = baseline_quality(questions, refined=refined, resamples=50)
        assert est is not None
        # The paper averaged unrounded per-category values; the CSV holds them rounded to 0.01.
        assert 100 * est.value == pytest.approx(paper_mean, abs=0.015)
        for category, pct in _pct(model).items():
            assert 100 * est.per_category[category] == pytest.approx(pct[refined], abs=1e-9)


def test_baseline_quality_is_the_equal_weight_mean_with_a_bootstrap_interval() -> None:
    qs = questions_for(_pct("Vicuna-13B"), per_category=8)
    est = baseline_quality(qs, confidence=0.9, resamples=500, seed=3)
    assert est is not None
    assert est.value == pytest.approx(0.8872, abs=2e-4)
    assert est.interval.low < est.value < est.interval.high
    assert est.interval.confidence == 0.9
    assert est.n_questions == 9 * 8
    again = baseline_quality(qs, confidence=0.9, resamples=500, seed=3)
    assert again == est
    wider = baseline_quality(qs, confidence=0.99, resamples=500, seed=3)
    assert wider is not None
    assert wider.interval.high - wider.interval.low > est.interval.high - est.interval.low


def test_improvement_can_be_negative_as_for_airoboros() -> None:
    qs = questions_for(_pct("Airoboros-7B"))
    imp = improvement_estimate(qs)
    assert imp is not None
    assert imp.value == pytest.approx((79.6444 - 81.6056) / 100, abs=2e-4)
    assert imp.interval.high < 0
    assert imp.per_category["math"] < 0 and imp.per_category["knowledge"] > 0


def _q(
    qid: str,
    score: float | None,
    ref: float | None,
    *,
    refined: bool = False,
    exact: bool | None = None,
    category: str = "math",
) -> QuestionResult:
    return QuestionResult(
        question_id=qid,
        category=category,
        refined=refined,
        judge_score=score,
        reference_judge_score=ref,
        exact_correct=exact,
        e2e_ms=1,
        generated_tokens=1,
        prompt_tokens_evaluated=1,
    )


def test_unparsable_judge_reply_is_missing_not_zero() -> None:
    qs = [_q("a", 8, 8), _q("b", None, 8), _q("c", 4, 8)]
    est = baseline_quality(qs)
    assert est is not None
    assert est.n_questions == 2
    assert est.value == pytest.approx(6 / 8)


def test_no_judged_question_gives_no_estimate() -> None:
    assert baseline_quality([_q("a", None, 8)]) is None
    assert improvement_estimate([_q("a", 5, 8)]) is None


def test_conformance_uses_exact_answers_first_then_judge_against_reference() -> None:
    qs = [
        _q("a", 3, 9, exact=True),  # exact answer right beats a low judge score
        _q("b", 9, 9),  # as good as the reference
        _q("c", 8, 9),  # worse
        _q("d", 9, 9, exact=False),
        _q("e", None, 9),  # unjudged: not counted
        _q("f", 9, 8, refined=True),
    ]
    assert conformance_counts(qs, refined=False) == {"math": (2, 4)}
    assert conformance_counts(qs, refined=True) == {"math": (1, 1)}
