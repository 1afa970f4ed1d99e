"""Exact-answer normalisers, checked against GSM8K's own reference solutions."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from shared.suites.answers import (
    Match,
    expected_number,
    final_number,
    infer_match,
    is_correct,
    option_letter,
)

GSM8K = Path(__file__).parents[1] / "data" / "gsm8k" / "test.jsonl"


def _gsm8k_rows() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines() if line.strip()]
    return [r for r in rows if "question" in r]


def _gold(solution: str) -> Decimal:
    return Decimal(solution.rsplit("####", 1)[1].strip().replace(",", ""))


def test_every_gsm8k_reference_solution_yields_its_own_final_number() -> None:
    rows = _gsm8k_rows()
    assert len(rows) == 1319
    wrong = [r["answer"][-60:] for r in rows if final_number(r["answer"]) != _gold(r["answer"])]
    assert wrong == []
    assert all(is_correct(r["answer"], r["answer"], Match.NUMBER) for r in rows)


def test_a_solution_written_in_prose_still_yields_its_final_number() -> None:
    """Without ``####``: the calculator marks removed and "The answer is N." at the end."""
    misses = 0
    rows = _gsm8k_rows()
    for row in rows:
        body, final = row["answer"].rsplit("####", 1)
        prose = re.sub(r"<<[^>]*>>", "", body) + f"The answer is {final.strip()}."
        misses += final_number(prose) != _gold(row["answer"])
    assert misses == 0


@pytest.mark.parametrize(
    ("reply", "number"),
    [
        ("She makes $18 every day.", "18"),
        ("The answer is 1,250 apples, not 40.", "1250"),
        ("3 + 4 = 7\n#### 7", "7"),
        ("It costs $4.50.", "4.5"),
        ("The total is -3", "-3"),
        ("I don't know.", None),
    ],
)
def test_final_number_reads_common_phrasings(reply: str, number: str | None) -> None:
    assert final_number(reply) == (Decimal(number) if number else None)


def test_numbers_compare_by_value_not_by_text() -> None:
    assert is_correct("So she pays 18.00 dollars.", "18", Match.NUMBER)
    assert not is_correct("So she pays 180 dollars.", "18", Match.NUMBER)
    assert expected_number("Some working\n#### 1,000") == Decimal(1000)


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("(B) ice", "B"),
        ("Answer: C", "C"),
        ("D. steam", "D"),
        ("The answer is A", "A"),
        ("ice", None),
    ],
)
def test_option_letter(reply: str, letter: str | None) -> None:
    assert option_letter(reply) == letter


def test_accepted_strings_match_whole_words_ignoring_case_punctuation_and_articles() -> None:
    accepted = ["Jupiter"]
    assert is_correct("The largest planet is JUPITER!", accepted, Match.STRINGS)
    assert not is_correct("It is Jupiterish.", accepted, Match.STRINGS)
    assert is_correct("It's the Pacific.", ["Pacific Ocean", "the Pacific"], Match.STRINGS)
    assert is_correct("São Paulo", ["Sao Paulo"], Match.STRINGS)


def test_the_match_an_answer_implies() -> None:
    assert infer_match("42") is Match.NUMBER
    assert infer_match("blah\n#### 3") is Match.NUMBER
    assert infer_match("(C)") is Match.LETTER
    assert infer_match("Tokyo") is Match.STRINGS
    assert infer_match(["a", "b"]) is Match.STRINGS
