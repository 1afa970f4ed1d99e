"""The three kinds of suite item: judged, exact and choice.

- ``judged``: a question graded 1-10 by a judge model (MT-bench single-answer
  grading), optionally against a ``reference`` answer. It may also carry an
  ``answer`` that can be checked exactly, as the nine-category set's math items do.
- ``exact``: a question whose reply is checked by a normaliser (see ``answers``).
- ``choice``: a ``context`` and ``choices`` scored by log-likelihood, no
  generation; ``answer`` is the index of the right choice.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.suites.answers import Match, expected_number, infer_match

MAX_TEXT_CHARS = 8000
"""Bound on any question, context or reference (a long FastChat prompt is ~3,000)."""
MAX_CHOICES = 10

ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
Answer = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ItemId
    category: Category = "generic"


class _Checkable(BaseModel):
    """An answer a reply can be checked against, and how to compare them."""

    answer: Answer | list[Answer] | None = None
    match: Match | None = None

    @property
    def check(self) -> Match | None:
        """The normaliser for this item's answer; None when it has no answer."""
        if self.answer is None:
            return None
        return self.match or infer_match(self.answer)

    @model_validator(mode="after")
    def _answer_fits_its_match(self) -> _Checkable:
        if self.check is Match.NUMBER and isinstance(self.answer, str):
            if expected_number(self.answer) is None:
                raise ValueError(f"answer {self.answer[:40]!r} is not a number")
        return self


class JudgedItem(_Item, _Checkable):
    """A question for the judge."""

    type: Literal["judged"] = "judged"
    question: Text
    reference: Text | None = None


class ExactItem(_Item, _Checkable):
    """A question with an answer a normaliser checks."""

    type: Literal["exact"]
    question: Text
    answer: Answer | list[Answer]


class ChoiceItem(_Item):
    """A context and its choices, scored by log-likelihood."""

    type: Literal["choice"]
    context: Text
    choices: list[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = Field(
        min_length=2, max_length=MAX_CHOICES
    )
    answer: int = Field(ge=0, description="index of the right choice")

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> ChoiceItem:
        if self.answer >= len(self.choices):
            raise ValueError(
                f"answer {self.answer} is not an index of the {len(self.choices)} choices"
            )
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices repeat")
        return self


SuiteItem = Annotated[JudgedItem | ExactItem | ChoiceItem, Field(discriminator="type")]
ItemType = Literal["judged", "exact", "choice"]
