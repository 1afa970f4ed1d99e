"""Evaluation questions: our own set in the paper's nine categories, or a FastChat file.

Both are JSON lines with ``question_id``, ``category`` and ``turns`` (FastChat's
``question.jsonl`` format; only the first turn is used). Optional keys:
``reference`` (a list of reference answers, as FastChat writes them) for
reference-guided judging, and ``answer`` ``{"kind": "number"|"choice"|"text",
"value": ...}`` for exact checking.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BUILTIN_PATH = Path(__file__).with_name("questions.jsonl")
CATEGORIES = (
    "writing",
    "roleplay",
    "common-sense",
    "fermi",
    "counterfactual",
    "coding",
    "math",
    "generic",
    "knowledge",
)
"""The nine categories of the seed paper's Table 3."""
ANSWER_KINDS = ("number", "choice", "text")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CHOICE_PATTERNS = (
    re.compile(r"\banswer(?: is)?\s*:?\s*\(?([A-E])\b"),
    re.compile(r"\(([A-E])\)"),
    re.compile(r"^\s*([A-E])\s*(?:[).:]|$)", re.MULTILINE),
)


class QuestionFileError(ValueError):
    """A questions file that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Question:
    """One evaluation prompt and what it can be checked against."""

    question_id: str
    category: str
    prompt: str
    reference: str | None = None
    answer_kind: str | None = None
    answer_value: str | float | None = None

    @property
    def checkable(self) -> bool:
        """True when the answer can be checked exactly."""
        return self.answer_kind is not None


def load_questions(
    path: str | Path | None = None,
    *,
    categories: Sequence[str] | None = None,
    per_category: int | None = None,
) -> list[Question]:
    """Read questions (default: the built-in set), optionally filtered and capped per category."""
    source = Path(path) if path is not None else BUILTIN_PATH
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QuestionFileError(f"{source}: cannot read: {exc.strerror or exc}") from None
    questions = [
        _parse_line(line, f"{source}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if categories:
        wanted = set(categories)
        questions = [q for q in questions if q.category in wanted]
    if per_category is not None:
        questions = list(_cap(questions, per_category))
    return questions


def _cap(questions: Iterable[Question], per_category: int) -> Iterable[Question]:
    seen: dict[str, int] = {}
    for question in questions:
        seen[question.category] = seen.get(question.category, 0) + 1
        if seen[question.category] <= per_category:
            yield question


def _parse_line(line: str, where: str) -> Question:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QuestionFileError(f"{where}: not JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise QuestionFileError(f"{where}: expected a JSON object")
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], str):
        raise QuestionFileError(f"{where}: 'turns' must be a non-empty list of strings")
    if "question_id" not in raw:
        raise QuestionFileError(f"{where}: missing 'question_id'")
    category = _category(raw.get("category", "generic"))
    kind, value = _answer(raw.get("answer"), where)
    reference = raw.get("reference")
    if isinstance(reference, list):
        reference = reference[0] if reference else None
    return Question(
        question_id=str(raw["question_id"]),
        category=category,
        prompt=turns[0],
        reference=reference if isinstance(reference, str) and reference.strip() else None,
        answer_kind=kind,
        answer_value=value,
    )


def _category(raw: object) -> str:
    """A category name the bench message accepts (FastChat uses e.g. 'stem')."""
    text = re.sub(r"[^a-z0-9_-]+", "-", str(raw).strip().lower()).strip("-_")
    return (text or "generic")[:40]


def _answer(raw: object, where: str) -> tuple[str | None, str | float | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or raw.get("kind") not in ANSWER_KINDS or "value" not in raw:
        raise QuestionFileError(f"{where}: 'answer' must be {{kind: {ANSWER_KINDS}, value}}")
    value = raw["value"]
    if raw["kind"] == "number":
        if not isinstance(value, int | float):
            raise QuestionFileError(f"{where}: a number answer needs a numeric value")
        return "number", float(value)
    return str(raw["kind"]), str(value)


def check_exact(question: Question, reply: str) -> bool | None:
    """Whether ``reply`` gives the reference answer; None when the question has none."""
    if question.answer_kind is None or question.answer_value is None:
        return None
    if question.answer_kind == "number":
        return _last_number(reply) is not None and math.isclose(
            _last_number(reply) or 0.0, float(question.answer_value), rel_tol=1e-6, abs_tol=1e-9
        )
    if question.answer_kind == "choice":
        return _choice(reply) == str(question.answer_value).upper()
    pattern = rf"\b{re.escape(str(question.answer_value).lower())}\b"
    return re.search(pattern, reply.lower()) is not None


def _last_number(reply: str) -> float | None:
    found = _NUMBER.findall(reply)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _choice(reply: str) -> str | None:
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(reply)
        if match:
            return match.group(1)
    return None
