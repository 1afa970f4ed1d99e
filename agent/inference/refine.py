"""Self-refinement: answer, critique the answer, rewrite it using the critique.

``y0 = M(x | zero-shot)``, ``c0 = M(x, y0 | critique)``, ``y1 = M(x, y0, c0 | refine)``
(see ../shared/PERFICS.md). The stages are one growing conversation, so each
stage's prompt extends the previous one and llama.cpp only evaluates the new
tokens. The instructions are generic (no domain knowledge, no tools) and in our
own words. If a stage fails or says nothing, the last good answer is served and
the result says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.inference.runtime import EmptyPrompt, Generation, InferenceError
from agent.inference.types import ChatModel

logger = logging.getLogger(__name__)

CRITIQUE_INSTRUCTION = (
    "Review the answer you just gave. Point out, briefly and concretely, anything that is "
    "wrong, missing or unclear: check the facts and any reasoning or arithmetic, whether "
    "every part of the question is addressed, and whether it is easy to follow. "
    "Do not rewrite the answer yet."
)
REFINE_INSTRUCTION = (
    "Using your review, write an improved answer to the original question. Fix every "
    "problem you found and keep what was already right. Reply with the answer only."
)


@dataclass(frozen=True)
class StageLimits:
    """Most tokens each stage may generate (a critique needs fewer than an answer)."""

    answer_tokens: int = 256
    critique_tokens: int = 160
    refine_tokens: int = 256
    temperature: float = 0.0


@dataclass(frozen=True)
class RefinementResult:
    """Every stage's output and cost; ``answer`` is what to serve."""

    question: str
    initial: str
    critiques: list[str]
    answer: str
    stages: list[Generation]
    fell_back: bool
    fallback_reason: str | None
    prompt_tokens_evaluated: int
    total_s: float
    refinements: list[str] = field(default_factory=list)

    @property
    def refined(self) -> bool:
        """True when a refined answer (not y0) is being served."""
        return bool(self.refinements) and not self.fell_back

    @property
    def generated_tokens(self) -> int:
        """Tokens generated over all stages."""
        return sum(stage.generated_tokens for stage in self.stages)

    @property
    def ttft_s(self) -> float:
        """Time to the first token of the first stage."""
        return self.stages[0].ttft_s if self.stages else 0.0


StageCallback = Callable[[str, str], None]
"""``on_token(stage, text)``: stage is ``answer``, ``critique`` or ``refine``."""


def answer(
    runtime: ChatModel,
    question: str,
    *,
    refine: bool = True,
    rounds: int = 1,
    limits: StageLimits = StageLimits(),
    on_token: StageCallback | None = None,
    system: str | None = None,
) -> RefinementResult:
    """Answer ``question``; with ``refine``, critique and rewrite it ``rounds`` times."""
    if not question.strip():
        raise EmptyPrompt("the question is empty")
    if rounds < 0:
        raise ValueError("rounds must be >= 0")
    run = _Refinement(runtime, limits, on_token)
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    initial = run.stage("answer", messages, limits.answer_tokens)  # errors here propagate
    if not initial.text.strip():
        run.fallback_reason = "the zero-shot answer was empty"
    elif refine:
        run.rounds(messages, initial, rounds)
    return run.result(question, initial)


class _Refinement:
    def __init__(
        self, runtime: ChatModel, limits: StageLimits, on_token: StageCallback | None
    ) -> None:
        self.runtime = runtime
        self.limits = limits
        self.on_token = on_token
        self.stages: list[Generation] = []
        self.critiques: list[str] = []
        self.refinements: list[str] = []
        self.best: str | None = None
        self.fallback_reason: str | None = None
        self.started = time.perf_counter()

    def stage(self, name: str, messages: list[dict[str, str]], max_tokens: int) -> Generation:
        callback = self.on_token
        sink = (lambda text: callback(name, text)) if callback else None
        generation = self.runtime.chat(
            messages, max_tokens=max_tokens, temperature=self.limits.temperature, on_token=sink
        )
        self.stages.append(generation)
        return generation

    def rounds(self, messages: list[dict[str, str]], initial: Generation, rounds: int) -> None:
        self.best = initial.text
        previous = initial
        for index in range(rounds):
            try:
                previous = self._one_round(messages, previous)
            except _StageFailed as failed:
                self.fallback_reason = f"round {index + 1}: {failed}"
                logger.warning("refinement fell back to the last good answer: %s", failed)
                return

    def _one_round(self, messages: list[dict[str, str]], previous: Generation) -> Generation:
        # the model's raw text goes back into the conversation so the prompt extends exactly
        messages.append({"role": "assistant", "content": previous.text})
        messages.append({"role": "user", "content": CRITIQUE_INSTRUCTION})
        critique = self._checked("critique", messages, self.limits.critique_tokens)
        self.critiques.append(critique.text.strip())
        messages.append({"role": "assistant", "content": critique.text})
        messages.append({"role": "user", "content": REFINE_INSTRUCTION})
        refined = self._checked("refine", messages, self.limits.refine_tokens)
        self.refinements.append(refined.text.strip())
        self.best = refined.text
        return refined

    def _checked(self, name: str, messages: list[dict[str, str]], max_tokens: int) -> Generation:
        try:
            generation = self.stage(name, messages, max_tokens)
        except InferenceError as exc:
            raise _StageFailed(f"the {name} stage failed: {exc}") from None
        if not generation.text.strip():
            raise _StageFailed(f"the {name} stage returned nothing")
        return generation

    def result(self, question: str, initial: Generation) -> RefinementResult:
        served = self.best if self.best is not None else initial.text
        return RefinementResult(
            question=question,
            initial=initial.text.strip(),
            critiques=self.critiques,
            answer=served.strip(),
            stages=self.stages,
            fell_back=self.fallback_reason is not None,
            fallback_reason=self.fallback_reason,
            prompt_tokens_evaluated=sum(s.prompt_tokens_evaluated for s in self.stages),
            total_s=time.perf_counter() - self.started,
            refinements=self.refinements,
        )


class _StageFailed(Exception):
    """A critique or refine stage that produced nothing usable."""
