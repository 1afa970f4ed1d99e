"""Which of the built-in suite's nine categories a question belongs to: a cheap heuristic.

``model: auto`` sends a question to the model measured best in its category, so the
gateway needs the category of a question it has never seen, at once and for free. This
is keyword and pattern matching, in a fixed order (the first rule that matches wins;
nothing matched is ``generic``): no model, no learning, wrong on questions phrased
unlike the rules expect. Its hit rate on the nine-category suite's own questions (which
it was written against, so an upper bound) is in the tests. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GENERIC = "generic"
RULES: tuple[tuple[str, str], ...] = (
    (
        "coding",
        r"```|`[^`]+`|\b(python|javascript|java|sql|shell|bash|regex|function|code|program"
        r"|script|compile|bug|algorithm)\b",
    ),
    (
        "fermi",
        r"\b(estimate|roughly how|about how (many|much)|approximately how|order of magnitude)\b",
    ),
    (
        "math",
        r"\d\s*[-+*/x×÷^=]\s*\d|\d+\s*%|\b(solve|equation|calculate|percent|how many (minutes"
        r"|hours|cents|dollars|metres|meters)|cost\b|sum of|multiply|divide)",
    ),
    (
        "counterfactual",
        r"\b(what if|what would happen if|suppose|imagine (that|if|a world)|had never|never been"
        r"|could not|couldn't|were twice|would have)\b",
    ),
    (
        "roleplay",
        r"\b(act as|pretend|role-?play|in character|you are an? |imagine you are)",
    ),
    (
        "common-sense",
        r"\b(most likely|who is the (tallest|shortest|oldest|youngest)|which is heavier"
        r"|where should|should (i|you)|is it safe|taller than|shorter than)\b",
    ),
    (
        "knowledge",
        r"\b(capital (city )?of|which planet|who (was|is|invented|wrote|discovered)|when (did|was)"
        r"|what (gas|year|element|country|continent|language)|in what year|at what temperature"
        r"|largest|smallest|longest|highest)\b",
    ),
    (
        "writing",
        r"\b(write|essay|poem|story|letter|e-?mail|compose|draft|blog|summari[sz]e|notice"
        r"|slogan)\b",
    ),
)
_COMPILED = tuple((category, re.compile(pattern, re.IGNORECASE)) for category, pattern in RULES)
MAX_SCANNED_CHARS = 2000
"""Only the question's start is read: the kind shows there, and the cost stays bounded."""


@dataclass(frozen=True)
class QuestionKind:
    """A question's category and why: the words that matched (or that none did)."""

    category: str
    reason: str


def classify(question: str) -> QuestionKind:
    """The category of ``question`` by the first rule that matches it; else ``generic``."""
    text = question[:MAX_SCANNED_CHARS]
    for category, pattern in _COMPILED:
        found = pattern.search(text)
        if found:
            return QuestionKind(category, f"matched {found.group(0).strip()!r}")
    return QuestionKind(GENERIC, "no category's words matched")
