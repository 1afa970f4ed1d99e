"""Cascade calibration: the chosen threshold meets the bound, nothing cheaper does; monotone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.planner.escalation import (
    ESCALATE_ALL,
    PairedItem,
    at_threshold,
    calibrate,
    candidate_thresholds,
    paired_items,
)
from controller.planner.profiling import clopper_pearson
from shared.messages import QuestionResult

items = st.lists(
    st.builds(
        PairedItem,
        confidence=st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        small_correct=st.booleans(),
        strong_correct=st.booleans(),
        small_s=st.floats(0.01, 10),
        strong_s=st.floats(0.01, 30),
    ),
    min_size=1,
    max_size=80,
)
floors = st.floats(0.3, 0.99)


@settings(max_examples=60, deadline=None)
@given(items, floors)
def test_the_chosen_threshold_meets_the_bound_and_nothing_cheaper_does(
    paired: list[PairedItem], floor: float
) -> None:
    calibration = calibrate(paired, floor=floor, confidence=0.9)
    chosen = calibration.chosen
    if chosen is None:
        assert all(row.conforming_low < floor for row in calibration.rows)
        return
    assert chosen.conforming_low >= floor
    low = clopper_pearson(chosen.conforming, chosen.n, 0.9, one_sided=True)[0]
    assert low == pytest.approx(chosen.conforming_low)
    cheaper = [r for r in calibration.rows if r.device_s_per_answer < chosen.device_s_per_answer]
    assert all(row.conforming_low < floor for row in cheaper)


@settings(max_examples=60, deadline=None)
@given(items)
def test_raising_the_threshold_escalates_more_costs_more_and_conforms_more(
    paired: list[PairedItem],
) -> None:
    rows = [at_threshold(paired, t, confidence=0.95) for t in candidate_thresholds(paired)]
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.escalated > before.escalated
        assert after.device_s_per_answer >= before.device_s_per_answer - 1e-9
        assert after.conforming >= before.conforming
    assert rows[0].escalated == 0
    assert rows[-1].escalated == len(paired)
    assert rows[-1].conforming == len(paired)  # always the strong answer: conforms by definition


def test_a_worked_example() -> None:
    # Confident answers are right, unsure ones wrong; the strong model is right on all but one.
    paired = (
        [PairedItem(1.0, True, True, 1.0, 4.0)] * 30
        + [PairedItem(0.4, False, True, 1.0, 4.0)] * 9
        + [PairedItem(0.4, False, False, 1.0, 4.0)]
    )
    calibration = calibrate(paired, floor=0.9, confidence=0.95)
    assert calibration.chosen is not None
    chosen = calibration.chosen
    assert chosen.threshold == 1.0  # escalate the unsure (0.4 < 1.0), keep the unanimous
    assert (chosen.escalated, chosen.correct, chosen.conforming) == (10, 39, 40)
    assert chosen.device_s_per_answer == pytest.approx(1.0 + 10 * 4.0 / 40)
    assert chosen.saving == pytest.approx(4.0 / 2.0)
    assert chosen.retained == pytest.approx(1.0)
    never = calibration.rows[0]
    assert never.threshold == 0.0 and never.conforming == 31 and never.conforming_low < 0.9
    assert calibration.rows[-1].threshold == ESCALATE_ALL
    assert never.retained_interval is not None
    assert never.retained is not None
    assert never.retained_interval.low < never.retained < never.retained_interval.high


def test_no_threshold_qualifies_when_too_few_items_for_the_floor() -> None:
    # 10 of 10 conforming still has a 95% lower bound of 0.74: a floor of 0.9 needs more items.
    paired = [PairedItem(1.0, True, True, 1.0, 2.0)] * 10
    assert calibrate(paired, floor=0.9).chosen is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        calibrate([], floor=0.9)
    with pytest.raises(ValueError, match="floor"):
        calibrate([PairedItem(1.0, True, True, 1.0, 2.0)], floor=0)


def _row(
    item: str, strategy: str, correct: bool | None, confidence: float | None
) -> QuestionResult:
    return QuestionResult(
        item_id=item,
        type="exact",
        category="math",
        refined=strategy != "direct",
        strategy=strategy,
        correct=correct,
        confidence=confidence,
        e2e_ms=2000,
        generated_tokens=1,
        prompt_tokens_evaluated=1,
    )


def test_rows_pair_by_item_with_the_strategy_and_direct_and_both_checked() -> None:
    small = [
        _row("a", "vote:3", True, 1.0),
        _row("b", "vote:3", False, 1 / 3),
        _row("c", "vote:3", None, 1.0),  # not checked
        _row("d", "direct", True, None),  # another strategy
        _row("e", "vote:3", True, None),  # an older agent: no confidence
    ]
    strong = [_row(i, "direct", i != "b", None) for i in "abcde"] + [
        _row("a", "vote:3", False, 1.0)
    ]
    paired = paired_items(small, strong, strategy="vote:3")
    assert paired == [
        PairedItem(1.0, True, True, 2.0, 2.0),
        PairedItem(1 / 3, False, False, 2.0, 2.0),
    ]
