"""Single-answer grading by a judge model, MT-bench style: a 1-10 rating as ``Rating: [[N]]``.

The grading instructions are ours. A reply whose rating cannot be parsed is
recorded as missing (None), never as 0: a weak judge must not look like a bad
answer. A base model (no chat template) cannot follow the instructions at all;
in ``probability`` mode (the default for base models) it continues a few-shot
transcript ending in ``Rating: [[`` and the expected digit is the score. In
``text`` mode, when the first reply carries no rating, the judge is asked once more,
briefly, in the same conversation (its KV cache makes that cheap).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from agent.inference.runtime import InferenceError
from agent.inference.types import ChatModel

logger = logging.getLogger(__name__)

JUDGE_SYSTEM = (
    "You are a fair and strict judge of answers written by an AI assistant. You rate how "
    "helpful, correct, relevant, complete and clear an answer is. You are not swayed by "
    "length: a short correct answer beats a long wrong one."
)
_GRADE = (
    "Rate the assistant's answer to the question below on a scale of 1 to 10.\n"
    "{reference_rule}"
    "First explain your judgement in one or two sentences, then give the rating on its own "
    'line in exactly this form: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n"
    "{reference_block}"
    "[The Start of the Assistant's Answer]\n{answer}\n[The End of the Assistant's Answer]"
)
_REFERENCE_RULE = (
    "A reference answer is given: compare the assistant's answer with it, and rate a wrong "
    "final answer low however well it is written.\n"
)
_REFERENCE_BLOCK = (
    "[The Start of the Reference Answer]\n{reference}\n[The End of the Reference Answer]\n\n"
)
_FEW_SHOT = (
    "Each answer below is rated from 1 (useless or wrong) to 10 (correct, complete and clear).\n\n"
    "Question: How many legs does a spider have?\nAnswer: Spiders have eight legs.\n"
    "Rating: [[9]]\n\n"
    "Question: Name a primary colour.\nAnswer: The moon is made of rock.\nRating: [[1]]\n\n"
    "Question: Why do we wash vegetables?\nAnswer: To remove some dirt.\nRating: [[6]]\n\n"
)
_DIGITS = tuple(str(d) for d in range(1, 10))
MIN_DIGIT_MASS = 0.2
"""Below this, the judge is not predicting a rating at all: the verdict is missing."""
JUDGE_MODES = ("auto", "text", "probability")
ASK_AGAIN = 'Give only your rating now, in exactly this form: "Rating: [[5]]".'

_BRACKETED = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_LABELLED = re.compile(r"rating\s*[:=]?\s*\[*\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?", re.IGNORECASE)


def parse_rating(reply: str) -> float | None:
    """The rating in a judge reply: the last ``[[N]]``, else ``Rating: N``; None if absent.

    Values outside 1-10 are treated as unparsable.
    """
    for pattern in (_BRACKETED, _LABELLED):
        found = pattern.findall(reply)
        if found:
            value = float(found[-1])
            return value if 1 <= value <= 10 else None
    return None


def grading_prompt(question: str, answer: str, reference: str | None = None) -> str:
    """The user message asking the judge to grade one answer."""
    return _GRADE.format(
        question=question.strip(),
        answer=answer.strip() or "(no answer)",
        reference_rule=_REFERENCE_RULE if reference else "",
        reference_block=_REFERENCE_BLOCK.format(reference=reference.strip()) if reference else "",
    )


@dataclass(frozen=True)
class Verdict:
    """A judge's rating (None when missing) and the replies it was read from."""

    score: float | None
    replies: tuple[str, ...]
    error: str | None = None


class Judge:
    """Grades answers with any chat model at temperature 0."""

    def __init__(
        self, model: ChatModel, *, max_tokens: int = 128, retry: bool = True, mode: str = "auto"
    ) -> None:
        if mode not in JUDGE_MODES:
            raise ValueError(f"judge mode must be one of {JUDGE_MODES}, got {mode!r}")
        if mode == "auto":
            base = not getattr(model, "instruction_tuned", True)
            mode = "probability" if base and hasattr(model, "next_token_probs") else "text"
        self.model = model
        self.max_tokens = max_tokens
        self.retry = retry
        self.mode = mode

    def grade(self, question: str, answer: str, reference: str | None = None) -> Verdict:
        """Rate ``answer`` to ``question`` 1-10, against ``reference`` when given."""
        if self.mode == "probability":
            return self._grade_by_probabilities(question, answer, reference)
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": grading_prompt(question, answer, reference)},
        ]
        replies: list[str] = []
        try:
            first = self.model.chat(messages, max_tokens=self.max_tokens, temperature=0.0)
            replies.append(first.text)
            score = parse_rating(first.text)
            if score is None and self.retry:
                messages += [
                    {"role": "assistant", "content": first.text},
                    {"role": "user", "content": ASK_AGAIN},
                ]
                again = self.model.chat(messages, max_tokens=16, temperature=0.0)
                replies.append(again.text)
                score = parse_rating(again.text)
        except InferenceError as exc:
            logger.warning("judge failed, rating recorded as missing: %s", exc)
            return Verdict(None, tuple(replies), error=str(exc))
        if score is None:
            logger.info("judge reply had no parsable rating: %r", replies[-1][:200])
        return Verdict(score, tuple(replies))

    def _grade_by_probabilities(self, question: str, answer: str, reference: str | None) -> Verdict:
        """Expected rating under the judge's next-token distribution after ``Rating: [[``.

        Small and base models do not write a usable rating, but their distribution
        over the digits still ranks answers (G-Eval's probability-weighted score).
        Digits 1-9 only: "10" starts with the same token as "1".
        """
        ref = f"Reference answer: {reference.strip()}\n" if reference else ""
        prompt = (
            f"{_FEW_SHOT}Question: {question.strip()}\n{ref}"
            f"Answer: {answer.strip() or '(no answer)'}\nRating: [["
        )
        try:
            probs = self.model.next_token_probs(prompt, _DIGITS)  # type: ignore[attr-defined]
        except InferenceError as exc:
            logger.warning("judge failed, rating recorded as missing: %s", exc)
            return Verdict(None, (), error=str(exc))
        mass = sum(probs.values())
        if mass < MIN_DIGIT_MASS:
            return Verdict(None, (f"digit probability {mass:.2f}",))
        score = sum(int(d) * p for d, p in probs.items()) / mass
        return Verdict(score, (f"expected rating {score:.2f} (digit probability {mass:.2f})",))
