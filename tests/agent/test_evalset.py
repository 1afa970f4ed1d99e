"""Our evaluation set, the FastChat loader and exact answer checking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.bench.evalset import (
    CATEGORIES,
    Question,
    QuestionFileError,
    check_exact,
    load_questions,
)


def test_builtin_set_covers_the_nine_categories_with_several_prompts() -> None:
    questions = load_questions()
    counts = {c: sum(q.category == c for q in questions) for c in CATEGORIES}
    assert all(n >= 3 for n in counts.values()), counts
    assert len({q.question_id for q in questions}) == len(questions)


def test_math_knowledge_and_common_sense_carry_checkable_references() -> None:
    for question in load_questions(categories=["math", "knowledge", "common-sense"]):
        assert question.checkable and question.reference, question.question_id
        # the reference answer itself passes the exact check
        assert check_exact(question, question.reference) is True, question.question_id


def test_filters_by_category_and_caps_per_category() -> None:
    picked = load_questions(categories=["math", "coding"], per_category=2)
    assert [q.category for q in picked].count("math") == 2
    assert {q.category for q in picked} == {"math", "coding"}


def test_reads_fastchat_question_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "question.jsonl"
    rows = [
        {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now longer."]},
        {"question_id": 111, "category": "math", "turns": ["2+2?"], "reference": ["4"]},
        {"question_id": 131, "category": "STEM Topics", "turns": ["Why is the sky blue?"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    questions = load_questions(path)
    assert [q.question_id for q in questions] == ["81", "111", "131"]
    assert questions[0].prompt == "Write a haiku."  # first turn only
    assert questions[1].reference == "4" and not questions[1].checkable
    assert questions[2].category == "stem-topics"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"question_id": 1, "turns": []}', "turns"),
        ('{"turns": ["q"]}', "question_id"),
        ('{"question_id": 1, "turns": ["q"], "answer": {"kind": "vibe", "value": 1}}', "answer"),
    ],
)
def test_bad_question_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question_id": 0, "turns": ["fine"]}\n' + line + "\n")
    with pytest.raises(QuestionFileError, match=rf"q.jsonl:2: .*{message}"):
        load_questions(path)


def test_missing_questions_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QuestionFileError, match="cannot read"):
        load_questions(tmp_path / "absent.jsonl")


def _q(kind: str, value: str | float) -> Question:
    return Question("x", "math", "?", answer_kind=kind, answer_value=value)


@pytest.mark.parametrize(
    ("kind", "value", "reply", "expected"),
    [
        ("number", 180.0, "4 groups of 45 cents: 180 cents.", True),
        ("number", 180.0, "The total is 1,800 cents", False),
        ("number", 1800.0, "The total is 1,800 cents", True),
        ("number", 6.0, "x = 6.0", True),
        ("number", 6.0, "no idea", False),
        ("choice", "B", "The answer is B.", True),
        ("choice", "B", "(C) they weigh the same", False),
        ("choice", "C", "C) outside in the sun", True),
        ("text", "Ali", "Ali is the shortest.", True),
        ("text", "Ali", "Alison is shortest", False),
    ],
)
def test_exact_checking(kind: str, value: str | float, reply: str, expected: bool) -> None:
    assert check_exact(_q(kind, value), reply) is expected


def test_question_without_reference_is_not_checked() -> None:
    assert check_exact(Question("x", "writing", "?"), "anything") is None
