"""Strategy names: one parser for the CLI, the chat API, messages and the database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.strategies import (
    DIRECT,
    MAX_ROUNDS,
    MAX_SAMPLES,
    REFINE_1,
    Strategy,
    StrategyError,
    canonical,
    parse_list,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("direct", DIRECT),
        ("refine", REFINE_1),
        ("refine:2", Strategy("refine", 2)),
        (" Verify-Refine ", Strategy("verify-refine")),
        ("vote:5", Strategy("vote", 5)),
    ],
)
def test_names_parse_to_their_strategy(name: str, expected: Strategy) -> None:
    assert Strategy.parse(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "vote",
        "vote:1",
        f"vote:{MAX_SAMPLES + 1}",
        "refine:0",
        f"refine:{MAX_ROUNDS + 1}",
        "direct:2",
        "verify-refine:3",
        "best-of",
        "vote:5;drop",
        "x" * 500,
    ],
)
def test_bad_names_are_refused_with_the_accepted_forms(name: str) -> None:
    with pytest.raises(StrategyError) as error:
        Strategy.parse(name)
    assert len(str(error.value)) < 200  # a huge name is not echoed back whole


@given(st.sampled_from(["direct", "verify-refine", "refine", "vote"]), st.integers(1, 16))
def test_a_canonical_name_parses_back_to_itself(kind: str, k: int) -> None:
    try:
        strategy = Strategy.parse(f"{kind}:{k}" if kind in ("refine", "vote") else kind)
    except StrategyError:
        return
    assert Strategy.parse(strategy.name) == strategy
    assert canonical(strategy.name) == strategy.name


def test_the_old_refine_flag_maps_to_refine_1_or_direct() -> None:
    assert Strategy.from_refine(True).name == "refine:1"
    assert Strategy.from_refine(False).name == "direct"


def test_a_list_keeps_order_and_drops_repeats() -> None:
    names = [s.name for s in parse_list("direct, refine:1,verify-refine,vote:5,refine")]
    assert names == ["direct", "refine:1", "verify-refine", "vote:5"]
    with pytest.raises(StrategyError):
        parse_list(" , ")
