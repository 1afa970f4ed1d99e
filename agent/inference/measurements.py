"""Token-level measurements on a loaded model: token probabilities, choice scores, pp/tg timing.

A mixin of :class:`agent.inference.runtime.ModelRuntime` (kept apart to keep that module
small); it talks to the ``Llama`` object the runtime owns and imports no
llama.cpp itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from agent.inference.choice_scoring import ChoiceScores, score_choices
from agent.inference.sequences import common_prefix
from agent.inference.types import EmptyPrompt, PromptTooLong


class RuntimeMeasurements:
    """Scoring and benchmark helpers that need direct access to the model's context."""

    _llm: Any
    n_ctx: int
    _conv_text: str
    _conv_tokens: list[int]
    _using: Callable[[], AbstractContextManager[None]]
    _tokens_for: Callable[[str], list[int]]
    _forget: Callable[[], None]

    def next_token_probs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        """Probability that the token after ``prompt`` is each candidate (its first token).

        Reuses the cached common prefix with the previous call, like generation.
        """
        if not prompt.strip():
            raise EmptyPrompt("the prompt is empty")
        with self._using():
            tokens = self._tokens_for(prompt)
            if len(tokens) >= self.n_ctx:
                raise PromptTooLong(
                    f"the prompt is {len(tokens)} tokens, the context holds {self.n_ctx}"
                )
            self._eval_with_prefix_reuse(tokens)
            self._conv_text, self._conv_tokens = prompt, list(tokens)
            logits = np.ctypeslib.as_array(
                self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),)
            )
            shifted = np.exp(logits - logits.max())
            probs = shifted / shifted.sum()
            ids = {
                c: self._llm.tokenize(c.encode(), add_bos=False, special=False) for c in candidates
            }
            return {c: float(probs[t[0]]) if t else 0.0 for c, t in ids.items()}

    def _eval_with_prefix_reuse(self, tokens: list[int]) -> None:
        llm = self._llm
        keep = common_prefix(list(llm._input_ids[: llm.n_tokens]), tokens)
        keep = min(keep, len(tokens) - 1)  # always evaluate one token, for fresh logits
        if keep == 0 or not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0
            llm.reset()
            llm._ctx.kv_cache_clear()
        llm.n_tokens = keep
        llm.eval(tokens[keep:])

    def score_choices(self, context: str, choices: Sequence[str]) -> ChoiceScores:
        """Each choice's summed log-probability after ``context`` (lm-evaluation-harness style)."""
        if not context.strip():
            raise EmptyPrompt("the context is empty")
        with self._using():
            self._conv_text, self._conv_tokens = "", []  # the KV cache will hold other text
            try:
                return score_choices(self._llm, context, choices, self.n_ctx)
            except ValueError as exc:
                raise PromptTooLong(str(exc)) from None

    def time_prefill(self, n_tokens: int) -> float:
        """Seconds to evaluate ``n_tokens`` prompt tokens from an empty cache (llama-bench pp)."""
        with self._using():
            self._forget()
            tokens = self._filler(n_tokens)
            started = time.perf_counter()
            self._llm.eval(tokens)
            return time.perf_counter() - started

    def time_decode(self, n_tokens: int) -> float:
        """Seconds to decode ``n_tokens`` tokens one at a time (llama-bench tg)."""
        with self._using():
            self._forget()
            tokens = self._filler(n_tokens + 1)
            self._llm.eval(tokens[:1])
            started = time.perf_counter()
            for token in tokens[1:]:
                self._llm.eval([token])
            return time.perf_counter() - started

    def _filler(self, n_tokens: int) -> list[int]:
        if n_tokens + 1 > self.n_ctx:
            raise PromptTooLong(f"{n_tokens} tokens do not fit the context of {self.n_ctx}")
        text = b"The quick brown fox jumps over the lazy dog while the answer waits. "
        base = list(self._llm.tokenize(text, add_bos=False, special=False))
        return (base * (n_tokens // len(base) + 1))[:n_tokens]
