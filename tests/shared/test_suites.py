"""Suites as data: item types, FastChat files, one clear error per bad line, built-in suites."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from shared.suites.answers import Match, is_correct
from shared.suites.builtin import BUILTIN, builtin_bytes, load_builtin
from shared.suites.items import ChoiceItem, ExactItem, JudgedItem
from shared.suites.suite import MAX_SUITE_BYTES, SuiteError, parse_suite

NINE = {
    "writing", "roleplay", "common-sense", "fermi", "counterfactual",
    "coding", "math", "generic", "knowledge",
}  # fmt: skip


def _jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


def test_three_item_types_parse_and_the_sha256_names_the_bytes() -> None:
    data = _jsonl(
        {"suite": "clinic", "version": "2", "description": "our questions"},
        {"id": "j1", "type": "judged", "question": "Explain fever.", "category": "knowledge"},
        {"id": "e1", "type": "exact", "question": "2+2?", "answer": "4"},
        {
            "id": "c1",
            "type": "choice",
            "context": "Sky:",
            "choices": [" blue", " green"],
            "answer": 0,
        },
    )
    suite = parse_suite(data, name="file-name")
    assert (suite.name, suite.version, suite.description) == ("clinic", "2", "our questions")
    assert suite.sha256 == hashlib.sha256(data).hexdigest()
    judged, exact, choice = suite.items
    assert isinstance(judged, JudgedItem) and judged.check is None
    assert isinstance(exact, ExactItem) and exact.check is Match.NUMBER
    assert isinstance(choice, ChoiceItem) and choice.choices[0] == " blue"
    assert suite.counts() == {"judged": 1, "exact": 1, "choice": 1}


def test_a_fastchat_question_file_loads_as_judged_items() -> None:
    data = _jsonl(
        {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now longer."]},
        {"question_id": 111, "category": "math", "turns": ["2+2?"], "reference": ["4"]},
        {"question_id": 131, "category": "STEM Topics", "turns": ["Why is the sky blue?"]},
    )
    suite = parse_suite(data, name="mt-bench")
    assert suite.name == "mt-bench" and suite.counts() == {"judged": 3}
    first, second, third = suite.items
    assert isinstance(first, JudgedItem) and first.question == "Write a haiku."
    assert isinstance(second, JudgedItem) and second.reference == "4"
    assert (first.id, third.category) == ("81", "stem-topics")


def test_every_bad_line_gets_one_error_that_names_the_line_and_the_field() -> None:
    data = (
        _jsonl(
            {"id": "ok", "type": "exact", "question": "q", "answer": "12"},
            {"id": "c", "type": "choice", "context": "Q", "choices": [" a", " b"], "answer": 3},
            {"id": "ok", "type": "exact", "question": "again", "answer": "1"},
            {"id": "n", "type": "exact", "question": "q"},
            {"id": "t", "type": "bogus"},
            {"id": "x", "type": "judged", "question": "q", "extra": 1},
            {"id": "bad id!", "type": "judged", "question": "q"},
            {"id": "num", "type": "exact", "question": "q", "answer": "ten", "match": "number"},
        )
        + b"not json\n"
    )
    with pytest.raises(SuiteError) as caught:
        parse_suite(data, name="mine.jsonl")
    assert caught.value.errors == [
        "line 2: answer 3 is not an index of the 2 choices",
        "line 3: id 'ok' repeats line 1",
        "line 4: answer: Field required",
        "line 5: type: must be one of 'judged', 'exact', 'choice'",
        "line 6: extra: Extra inputs are not permitted",
        "line 7: id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$'",
        "line 8: answer 'ten' is not a number",
        "line 9: not JSON (Expecting value at column 1)",
    ]
    assert str(caught.value).splitlines()[0].startswith("mine.jsonl: line 2:")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "no items"),
        (b"\xff\xfe", "not UTF-8 (byte 0)"),
        (b" " * (MAX_SUITE_BYTES + 1), f"{MAX_SUITE_BYTES + 1} bytes; a suite holds at most"),
    ],
)
def test_files_that_are_not_suites_are_refused_whole(data: bytes, error: str) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_suite(data, name="x")
    assert caught.value.errors[0].startswith(error)


def test_filtering_keeps_file_order_and_caps_per_category() -> None:
    suite = load_builtin("nine-categories").filtered(["math", "coding"], per_category=2)
    assert [i.category for i in suite.items].count("math") == 2
    assert {i.category for i in suite.items} == {"math", "coding"}


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_suites_parse_and_carry_their_name(name: str) -> None:
    suite = load_builtin(name)
    assert suite.name == name
    assert suite.sha256 == hashlib.sha256(builtin_bytes(name)).hexdigest()


def test_the_judged_set_covers_nine_categories_and_its_references_pass_their_own_check() -> None:
    suite = load_builtin("nine-categories")
    assert {i.category for i in suite.items} == NINE
    checked = [i for i in suite.items if isinstance(i, JudgedItem) and i.check is not None]
    assert len(checked) >= 10
    for item in checked:
        assert item.reference and item.answer and item.check
        assert is_correct(item.reference, item.answer, item.check), item.id


def test_the_choice_suite_has_over_100_items_in_nine_categories_with_spaced_choices() -> None:
    items = load_builtin("everyday-choice").items
    assert len(items) >= 100
    assert all(isinstance(i, ChoiceItem) for i in items)
    choice_items = [i for i in items if isinstance(i, ChoiceItem)]
    assert {i.category for i in choice_items} == NINE
    assert all(
        c.startswith(" ") and not c.startswith("  ") for i in choice_items for c in i.choices
    )
    assert all(i.context.endswith("Answer:") for i in choice_items)
    positions = [i.answer for i in choice_items]
    assert all(positions.count(p) >= len(items) // 8 for p in range(4)), "answers spread over A-D"


def test_the_gsm8k_sample_is_verbatim_from_the_dataset_with_its_licence() -> None:
    data = Path(__file__).parents[1] / "data" / "gsm8k" / "test.jsonl"
    dataset = {json.loads(line)["question"]: json.loads(line)["answer"] for line in data.open()}
    suite = load_builtin("gsm8k-sample")
    assert len(suite.items) == 100
    for item in suite.items:
        assert isinstance(item, ExactItem) and item.check is Match.NUMBER
        assert dataset[item.question] == item.answer
    here = Path(__file__).parents[2] / "shared" / "suites" / "data"
    assert "MIT License" in (here / "gsm8k-sample.LICENSE").read_text()
    assert (
        "3101c7d5072418e28b9008a6636bde82a006892c"
        in (here / "gsm8k-sample.ATTRIBUTION.md").read_text()
    )
