"""Checking a model's free-text answer against an exact item's answer, without a judge.

Three normalisers, one per kind of answer: the final number (GSM8K's
``#### N`` convention first, then "the answer is N", then the last number in
the text), an option letter, or one of a list of accepted strings (compared
after lower-casing and dropping punctuation and articles, on word boundaries).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class Match(StrEnum):
    """How an exact item's answer is compared with the model's."""

    NUMBER = "number"
    LETTER = "letter"
    STRINGS = "strings"


_NUM = r"-?\$?\s?\d[\d,]*(?:\.\d+)?"
_NUMBER = re.compile(_NUM)
_GSM8K_FINAL = re.compile(rf"####\s*({_NUM})")
_STATED = re.compile(
    rf"(?:answer|result|total)\s*(?:is|=|:)\s*(?:about\s+|approximately\s+)?\**\s*({_NUM})",
    re.IGNORECASE,
)
_LETTER_PATTERNS = (
    re.compile(r"\b(?i:answer)(?:\s+is)?\s*:?\s*\(?([A-J])\b"),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"^\s*\**([A-J])\**\s*(?:[).:]|$)", re.MULTILINE),
)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def parse_number(text: str) -> Decimal | None:
    """A number written as in GSM8K (``1,000``, ``$18``, ``-3.5``); None if it is not one."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def final_number(text: str) -> Decimal | None:
    """The answer a text gives as a number: ``#### N``, else "answer is N", else its last number."""
    for pattern in (_GSM8K_FINAL, _STATED):
        found = pattern.findall(text)
        if found:
            return parse_number(found[-1])
    numbers = _NUMBER.findall(text)
    return parse_number(numbers[-1]) if numbers else None


def option_letter(text: str) -> str | None:
    """The option letter a reply picks ("(B)", "Answer: B", a line starting "B.")."""
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def normalise_text(text: str) -> str:
    """Lower case, no accents, punctuation or articles, single spaces (SQuAD-style)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^\w\s]", " ", plain)
    return " ".join(_ARTICLES.sub(" ", words).split())


def infer_match(answer: str | list[str]) -> Match:
    """The normaliser an answer implies when the item does not name one."""
    if isinstance(answer, list):
        return Match.STRINGS
    if _GSM8K_FINAL.search(answer) or parse_number(answer) is not None:
        return Match.NUMBER
    if re.fullmatch(r"\(?[A-J]\)?", answer.strip()):
        return Match.LETTER
    return Match.STRINGS


def expected_number(answer: str) -> Decimal | None:
    """The number an item's answer states (a bare number, or a GSM8K solution's ``#### N``)."""
    found = _GSM8K_FINAL.findall(answer)
    return parse_number(found[-1] if found else answer)


def is_correct(reply: str, answer: str | list[str], match: Match) -> bool:
    """Whether ``reply`` gives ``answer`` under the ``match`` normaliser."""
    if match is Match.NUMBER:
        expected = expected_number(answer if isinstance(answer, str) else answer[0])
        return expected is not None and final_number(reply) == expected
    if match is Match.LETTER:
        expected_letter = (answer if isinstance(answer, str) else answer[0]).strip("() ").upper()
        return option_letter(reply) == expected_letter
    accepted = [answer] if isinstance(answer, str) else answer
    said = f" {normalise_text(reply)} "
    return any(f" {normalise_text(a)} " in said for a in accepted if normalise_text(a))
