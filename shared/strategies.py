"""Test-time strategy names, as written on the CLI, in the chat API, messages and the database.

``direct`` answers once; ``refine:k`` answers, then critiques and rewrites k
times; ``verify-refine`` rewrites only when its critique names a concrete
error; ``vote:k`` samples k answers and serves the majority final answer.
One parser for every side, so a name means the same thing everywhere and a
bad one is refused with the accepted forms.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints

StrategyKind = Literal["direct", "refine", "verify-refine", "vote"]
MAX_ROUNDS = 4
"""Most refine rounds (each adds a critique and a rewrite; the conversation must fit n_ctx)."""
MAX_SAMPLES = 16
"""Most vote samples (each costs a full answer's decode)."""
DEFAULT_VOTE_TEMPERATURE = 0.7
"""Vote samples are drawn at this temperature (self-consistency needs diverse samples)."""

_NAME = re.compile(r"^(direct|verify-refine|refine|vote)(?::(\d{1,2}))?$")


class StrategyError(ValueError):
    """A strategy name that is not one of the accepted forms."""


@dataclass(frozen=True, order=True)
class Strategy:
    """One test-time strategy; ``k`` is refine rounds or vote samples (1 otherwise)."""

    kind: StrategyKind
    k: int = 1

    @classmethod
    @functools.lru_cache(maxsize=256)
    def parse(cls, name: str) -> Strategy:
        """``direct``, ``refine`` (= ``refine:1``), ``refine:k``, ``verify-refine``, ``vote:k``."""
        match = _NAME.match(name.strip().lower())
        if match is None:
            raise StrategyError(
                f"unknown strategy {name[:40]!r}: use direct, refine:K (K 1-{MAX_ROUNDS}), "
                f"verify-refine or vote:K (K 2-{MAX_SAMPLES})"
            )
        kind, count = match.group(1), match.group(2)
        if kind in ("direct", "verify-refine"):
            if count is not None:
                raise StrategyError(f"{kind} takes no count, got {name!r}")
            return cls(kind)  # type: ignore[arg-type]
        if kind == "vote" and count is None:
            raise StrategyError(f"vote needs a sample count, e.g. vote:5, got {name!r}")
        k = int(count) if count is not None else 1
        low, high = (1, MAX_ROUNDS) if kind == "refine" else (2, MAX_SAMPLES)
        if not low <= k <= high:
            raise StrategyError(f"{kind}:K needs {low} <= K <= {high}, got {name!r}")
        return cls(kind, k)  # type: ignore[arg-type]

    @classmethod
    def from_refine(cls, refine: bool) -> Strategy:
        """What an older agent's or controller's ``refine`` flag means."""
        return REFINE_1 if refine else DIRECT

    @property
    def name(self) -> str:
        """The canonical name (``refine:1``, ``vote:5``, ``direct``)."""
        return self.kind if self.kind in ("direct", "verify-refine") else f"{self.kind}:{self.k}"

    @property
    def refines(self) -> bool:
        """Whether the strategy can serve something other than the first answer's text."""
        return self.kind != "direct"

    def __str__(self) -> str:
        return self.name


DIRECT = Strategy("direct")
REFINE_1 = Strategy("refine", 1)


def parse_list(text: str) -> list[Strategy]:
    """A comma-separated list, each strategy once, in the order given."""
    names = [part for part in (p.strip() for p in text.split(",")) if part]
    if not names:
        raise StrategyError("no strategy named")
    return list(dict.fromkeys(Strategy.parse(name) for name in names))


def canonical(name: str) -> str:
    """A name as stored: parsed and written back (``REFINE`` -> ``refine:1``)."""
    return Strategy.parse(name).name


def option_label(model_id: str | None, strategy: str | None, refine: bool | None = None) -> str:
    """An option as plans and tables show it: ``m`` (direct) or ``m vote:5``; ``-``: no model.

    ``strategy`` None is a record from before strategies, read by its ``refine`` flag.
    """
    if not model_id:
        return "-"
    name = strategy or Strategy.from_refine(bool(refine)).name
    return model_id if name == DIRECT.name else f"{model_id} {name}"


StrategyName = Annotated[str, StringConstraints(max_length=24), AfterValidator(canonical)]
"""A strategy name in a message or request: refused unless it parses, stored canonical."""
