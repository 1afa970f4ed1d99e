"""Running a suite's items on one model, and turning the outcomes into per-item rows.

Judged and exact items are answered with every strategy asked for (``direct``
always, as the baseline the others are paired with); choice items are scored
by log-likelihood, no generation, so they have a ``direct`` row only. Exact
items are checked by their normaliser here, on the device; judged items are
graded later by whoever holds the judge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.inference.choice_scoring import ChoiceScores
from agent.inference.refine import StageLimits
from agent.inference.runtime import ModelRuntime
from agent.inference.strategies import StrategyResult, run
from agent.inference.types import InferenceError
from shared.messages import MAX_ANSWER_CHARS, QuestionResult
from shared.strategies import DIRECT, Strategy
from shared.suites.answers import is_correct
from shared.suites.items import ChoiceItem, ExactItem, JudgedItem

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``."""
Item = JudgedItem | ExactItem | ChoiceItem


@dataclass(frozen=True)
class ChoiceOutcome:
    """One choice item as scored: the picks for acc and acc_norm, and what it cost."""

    chosen: int
    chosen_norm: int
    seconds: float
    tokens_evaluated: int


@dataclass
class Outcome:
    """One item on the candidate, with what the judge and the reference made of it."""

    item: Item
    results: dict[Strategy, StrategyResult] = field(default_factory=dict)
    choice: ChoiceOutcome | None = None
    judge_scores: dict[Strategy, float | None] = field(default_factory=dict)
    reference_text: str | None = None
    reference_chosen: int | None = None
    reference_score: float | None = None


def run_items(
    runtime: ModelRuntime,
    items: Sequence[Item],
    *,
    strategies: Sequence[Strategy],
    limits: StageLimits,
    phase: str,
    progress: Progress,
) -> list[Outcome | None]:
    """Every item's outcome; one that cannot be run (too long, say) is None, not fatal."""
    out: list[Outcome | None] = []
    for index, item in enumerate(items):
        progress(phase, index, len(items))
        try:
            if isinstance(item, ChoiceItem):
                out.append(Outcome(item, choice=score_choice(runtime, item)))
            else:
                out.append(Outcome(item, results=_answers(runtime, item, strategies, limits)))
        except InferenceError as exc:
            logger.warning("%s: item %s skipped: %s", phase, item.id, exc)
            out.append(None)
    progress(phase, len(items), len(items))
    return out


def _answers(
    runtime: ModelRuntime,
    item: JudgedItem | ExactItem,
    strategies: Sequence[Strategy],
    limits: StageLimits,
) -> dict[Strategy, StrategyResult]:
    results = {}
    for strategy in dict.fromkeys(s for s in strategies if s != DIRECT):
        runtime.reset()  # each strategy pays its own prefill, as when it serves alone
        results[strategy] = run(runtime, item.question, strategy, limits=limits, match=item.check)
    greedy = next((r for r in results.values() if r.stages[0].name == "answer"), None)
    if greedy is not None:  # its first stage is exactly the direct answer: not run twice
        direct = _first_stage(greedy)
    else:
        runtime.reset()
        direct = run(runtime, item.question, DIRECT, limits=limits)
    return {DIRECT: direct, **results}


def _first_stage(result: StrategyResult) -> StrategyResult:
    first = result.stages[0]
    return StrategyResult(
        strategy=DIRECT,
        question=result.question,
        initial=result.initial,
        answer=result.initial,
        stages=[first],
        total_s=first.generation.total_s,
    )


def score_choice(runtime: ModelRuntime, item: ChoiceItem) -> ChoiceOutcome:
    """Score every choice of ``item`` by its log-likelihood after the context."""
    started = time.perf_counter()
    scores: ChoiceScores = runtime.score_choices(item.context, item.choices)
    return ChoiceOutcome(
        chosen=scores.chosen(),
        chosen_norm=scores.chosen_norm(item.choices),
        seconds=time.perf_counter() - started,
        tokens_evaluated=scores.tokens_evaluated,
    )


def attach_reference(outcomes: Sequence[Outcome], reference: Sequence[Outcome | None]) -> None:
    """Record the reference model's zero-shot answer or pick on each of the same items."""
    for mine, theirs in zip(outcomes, reference, strict=True):
        if theirs is None:
            continue
        if theirs.choice is not None:
            mine.reference_chosen = theirs.choice.chosen
        elif DIRECT in theirs.results:
            mine.reference_text = theirs.results[DIRECT].answer


def item_rows(outcomes: Sequence[Outcome]) -> list[QuestionResult]:
    """Per-item rows: one per strategy for answered items, one ``direct`` row for choice items."""
    rows = []
    for outcome in outcomes:
        if outcome.choice is not None:
            rows.append(_choice_row(outcome, outcome.choice))
        rows.extend(_answer_row(outcome, result) for result in outcome.results.values())
    return rows


def _choice_row(outcome: Outcome, choice: ChoiceOutcome) -> QuestionResult:
    item = outcome.item
    assert isinstance(item, ChoiceItem)
    reference = outcome.reference_chosen
    return QuestionResult(
        item_id=item.id,
        type="choice",
        category=item.category,
        refined=False,
        strategy=DIRECT.name,
        correct=choice.chosen == item.answer,
        correct_norm=choice.chosen_norm == item.answer,
        reference_correct=None if reference is None else reference == item.answer,
        chosen=choice.chosen,
        e2e_ms=choice.seconds * 1000,
        generated_tokens=0,
        prompt_tokens_evaluated=choice.tokens_evaluated,
    )


def _answer_row(outcome: Outcome, result: StrategyResult) -> QuestionResult:
    """One row per strategy, costing every stage that strategy ran."""
    item = outcome.item
    assert isinstance(item, JudgedItem | ExactItem)
    return QuestionResult(
        item_id=item.id,
        type=item.type,
        category=item.category,
        refined=result.strategy.refines,
        strategy=result.strategy.name,
        judge_score=outcome.judge_scores.get(result.strategy),
        reference_judge_score=outcome.reference_score,
        correct=_check(item, result.answer),
        reference_correct=_check(item, outcome.reference_text),
        answer=result.answer[:MAX_ANSWER_CHARS],
        e2e_ms=result.total_s * 1000,
        generated_tokens=result.generated_tokens,
        prompt_tokens_evaluated=result.prompt_tokens_evaluated,
        confidence=result.confidence,
    )


def _check(item: JudgedItem | ExactItem, text: str | None) -> bool | None:
    if text is None or item.answer is None or item.check is None:
        return None
    return is_correct(text, item.answer, item.check)
