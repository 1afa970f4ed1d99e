"""Test-time strategies: ways to spend more device time on one answer, through ``ChatModel``.

``direct`` and ``refine:k`` are :func:`agent.inference.refine.answer`;
``verify-refine`` asks first whether the answer has a concrete error and
rewrites only then (small models' unguided self-correction tends to make
answers worse); ``vote:k`` samples k answers to the same prompt (the runtime
reuses the prompt's KV cache, so only the first sample pays its prefill) and
serves the one whose normalised final answer is most common. Every strategy
reports its named stages, so the cost and the KV reuse of each are visible.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from agent.inference.refine import REFINE_INSTRUCTION, StageCallback, StageLimits, answer
from agent.inference.types import ChatModel, EmptyPrompt, Generation, InferenceError
from shared.strategies import DEFAULT_VOTE_TEMPERATURE, Strategy
from shared.suites.answers import Match, final_number, normalise_text, option_letter

VERIFY_INSTRUCTION = (
    "Check the answer you just gave for a concrete error: a wrong fact, a wrong calculation "
    "or reasoning step, or a part of the question left unanswered. If you find one, reply "
    "'ERROR:' followed by the error in one sentence. If you find none, reply 'NO ERROR'."
)
_ERROR_VERDICT = re.compile(r"^\W*error\b", re.IGNORECASE)


@dataclass(frozen=True)
class Stage:
    """One model call: ``answer``, ``critique``, ``refine``, ``verify`` or ``sample``."""

    name: str
    generation: Generation


@dataclass(frozen=True)
class StrategyResult:
    """What a strategy served, every stage it ran, and what they cost."""

    strategy: Strategy
    question: str
    initial: str
    answer: str
    stages: list[Stage]
    total_s: float
    fell_back: bool = False
    fallback_reason: str | None = None
    votes: dict[str, int] = field(default_factory=dict)
    """vote: how many samples gave each normalised final answer."""
    flagged: bool | None = None
    """verify-refine: whether its check named an error (None: the check did not run)."""

    @property
    def confidence(self) -> float | None:
        """How sure the strategy's own check is of its answer, in [0, 1]; None: no check.

        vote:k: the majority's share of the k samples (samples without a comparable
        answer count against it); verify-refine: 1 when its check found no error, 0 when
        it named one or could not run. The gateway escalates answers below a threshold.
        """
        if self.strategy.kind == "vote":
            return max(self.votes.values(), default=0) / self.strategy.k
        if self.strategy.kind == "verify-refine":
            return 0.0 if self.flagged is not False else 1.0
        return None

    @property
    def generated_tokens(self) -> int:
        """Tokens generated over all stages."""
        return sum(s.generation.generated_tokens for s in self.stages)

    @property
    def prompt_tokens_evaluated(self) -> int:
        """Prompt tokens llama.cpp really evaluated (KV-cache hits excluded)."""
        return sum(s.generation.prompt_tokens_evaluated for s in self.stages)

    @property
    def naive_prompt_tokens(self) -> int:
        """Prompt tokens an implementation without KV reuse would evaluate."""
        return sum(s.generation.prompt_tokens for s in self.stages)

    @property
    def kv_saved_tokens(self) -> int:
        """Prefill tokens the KV cache saved against the naive implementation."""
        return self.naive_prompt_tokens - self.prompt_tokens_evaluated

    @property
    def ttft_s(self) -> float:
        """Time to the first token of the first stage."""
        return self.stages[0].generation.ttft_s if self.stages else 0.0

    @property
    def served_stage(self) -> Generation:
        """The stage whose text is served (its finish reason is the reply's)."""
        served = [s for s in self.stages if s.generation.text.strip() == self.answer]
        return (served[-1] if served else self.stages[0]).generation


def run(
    runtime: ChatModel,
    question: str,
    strategy: Strategy,
    *,
    limits: StageLimits | None = None,
    match: Match | None = None,
    vote_temperature: float = DEFAULT_VOTE_TEMPERATURE,
    on_token: StageCallback | None = None,
    system: str | None = None,
) -> StrategyResult:
    """Answer ``question`` with ``strategy``; ``match`` says how vote compares answers."""
    if not question.strip():
        raise EmptyPrompt("the question is empty")
    limits = limits or StageLimits()
    if strategy.kind == "vote":
        return _vote(runtime, question, strategy, limits, match, vote_temperature, on_token, system)
    if strategy.kind == "verify-refine":
        return _verify_refine(runtime, question, strategy, limits, on_token, system)
    refined = answer(
        runtime,
        question,
        refine=strategy.kind == "refine",
        rounds=strategy.k,
        limits=limits,
        on_token=on_token,
        system=system,
    )
    names = ["answer"] + [("critique", "refine")[i % 2] for i in range(len(refined.stages) - 1)]
    return StrategyResult(
        strategy=strategy,
        question=question,
        initial=refined.initial,
        answer=refined.answer,
        stages=[Stage(n, g) for n, g in zip(names, refined.stages, strict=True)],
        total_s=refined.total_s,
        fell_back=refined.fell_back,
        fallback_reason=refined.fallback_reason,
    )


class _Stages:
    """Runs named stages on one conversation and records them."""

    def __init__(
        self, runtime: ChatModel, question: str, system: str | None, on_token: StageCallback | None
    ) -> None:
        self.runtime, self.on_token = runtime, on_token
        self.messages = [{"role": "system", "content": system}] if system else []
        self.messages.append({"role": "user", "content": question})
        self.stages: list[Stage] = []
        self.started = time.perf_counter()

    def call(self, name: str, max_tokens: int, temperature: float) -> Generation:
        callback = self.on_token
        sink: Callable[[str], None] | None = (
            (lambda text: callback(name, text)) if callback else None
        )
        generation = self.runtime.chat(
            self.messages, max_tokens=max_tokens, temperature=temperature, on_token=sink
        )
        self.stages.append(Stage(name, generation))
        return generation

    def extend(self, reply: str, instruction: str) -> None:
        self.messages.append({"role": "assistant", "content": reply})
        self.messages.append({"role": "user", "content": instruction})

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _verify_refine(
    runtime: ChatModel,
    question: str,
    strategy: Strategy,
    limits: StageLimits,
    on_token: StageCallback | None,
    system: str | None,
) -> StrategyResult:
    run = _Stages(runtime, question, system, on_token)
    initial = run.call("answer", limits.answer_tokens, limits.temperature).text
    served, reason, flagged = initial, None, None
    if not initial.strip():
        reason = "the first answer was empty"
    else:
        try:
            run.extend(initial, VERIFY_INSTRUCTION)
            verdict = run.call("verify", limits.critique_tokens, limits.temperature).text
            flagged = bool(_ERROR_VERDICT.match(verdict))
            if flagged:
                run.extend(verdict, REFINE_INSTRUCTION)
                rewrite = run.call("refine", limits.refine_tokens, limits.temperature).text
                if rewrite.strip():
                    served = rewrite
                else:
                    reason = "the rewrite was empty"
        except InferenceError as exc:
            reason = f"a later stage failed: {exc}"
    return StrategyResult(
        strategy=strategy,
        question=question,
        initial=initial.strip(),
        answer=served.strip(),
        stages=run.stages,
        total_s=run.elapsed(),
        fell_back=reason is not None,
        fallback_reason=reason,
        flagged=flagged,
    )


def _vote(
    runtime: ChatModel,
    question: str,
    strategy: Strategy,
    limits: StageLimits,
    match: Match | None,
    temperature: float,
    on_token: StageCallback | None,
    system: str | None,
) -> StrategyResult:
    run = _Stages(runtime, question, system, on_token)
    samples = [
        run.call("sample", limits.answer_tokens, temperature).text.strip()
        for _ in range(strategy.k)
    ]
    served, votes = majority(samples, match)
    reason = None if votes else "no two answers could be compared; the first is served"
    return StrategyResult(
        strategy=strategy,
        question=question,
        initial=samples[0],
        answer=served,
        stages=run.stages,
        total_s=run.elapsed(),
        fell_back=reason is not None,
        fallback_reason=reason,
        votes=votes,
    )


def answer_key(text: str, match: Match | None) -> Hashable | None:
    """What two answers must share to count as the same: the normalised final answer.

    Without a ``match`` (a chat request) answers are compared by their final number;
    None when the text gives nothing comparable.
    """
    if match is Match.LETTER:
        return option_letter(text)
    if match is Match.STRINGS:
        return normalise_text(text) or None
    return final_number(text)


def majority(samples: list[str], match: Match | None) -> tuple[str, dict[str, int]]:
    """The served sample and the vote counts; ties go to the answer sampled first.

    Samples without a comparable answer do not vote; with no votes at all the
    first sample is served and the counts are empty.
    """
    keys = [answer_key(text, match) for text in samples]
    counts = Counter(key for key in keys if key is not None)
    if not counts:
        return samples[0], {}
    best = max(counts.values())
    winner = next(key for key in keys if key is not None and counts[key] == best)
    served = samples[keys.index(winner)]
    return served, {str(key): n for key, n in counts.most_common()}
