"""Log-likelihood of each choice given a context, as lm-evaluation-harness scores multiple choice.

``context`` and ``context + choice`` are tokenised with the model's tokenizer
(BOS as the model wants); the choice's tokens are those after the common
prefix, and its score is the sum of their log-probabilities. Prefill only: the
shared prefix is evaluated once per item (llama.cpp's KV cache keeps it), and
each choice's tokens in one batch whose every position returns logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ChoiceLogprob:
    """One choice's summed log-probability and how many tokens it covers."""

    logprob: float
    tokens: int


@dataclass(frozen=True)
class ChoiceScores:
    """Every choice's score for one item, and the tokens llama.cpp decoded for them."""

    choices: list[ChoiceLogprob]
    tokens_evaluated: int

    def chosen(self) -> int:
        """The pick for acc: the highest summed log-probability."""
        return int(np.argmax([c.logprob for c in self.choices]))

    def chosen_norm(self, texts: Sequence[str]) -> int:
        """The pick for acc_norm: the highest log-probability per UTF-8 byte of the choice."""
        per_byte = [c.logprob / len(t.encode()) for c, t in zip(self.choices, texts, strict=True)]
        return int(np.argmax(per_byte))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (llama.cpp hands back float32 logits)."""
    rows = logits.astype(np.float64)
    shifted = rows - rows.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def score_choices(llm: Any, context: str, choices: Sequence[str], n_ctx: int) -> ChoiceScores:
    """Summed log-probability of each choice's tokens after ``context`` (a ``llama_cpp.Llama``)."""
    context_tokens = llm.tokenize(context.encode(), add_bos=True, special=False)
    scored, evaluated = [], 0
    for choice in choices:
        whole = llm.tokenize((context + choice).encode(), add_bos=True, special=False)
        if len(whole) > n_ctx:
            raise ValueError(
                f"context and choice are {len(whole)} tokens, the context holds {n_ctx}"
            )
        logprob, decoded = _score_one(llm, context_tokens, whole)
        scored.append(logprob)
        evaluated += decoded
    return ChoiceScores(scored, evaluated)


def _score_one(llm: Any, context_tokens: list[int], whole: list[int]) -> tuple[ChoiceLogprob, int]:
    # The first choice token is predicted from the position before it, so at least one
    # token must condition it (a model without BOS and an empty-looking context).
    start = max(1, common_prefix(context_tokens, whole))
    if start >= len(whole):
        return ChoiceLogprob(0.0, 0), 0
    decoded = _evaluate_prefix(llm, whole[: start - 1])
    scored = whole[start - 1 :]
    logits = _decode_with_logits(llm, scored)
    logprobs = log_softmax(logits[:-1])
    targets = np.asarray(whole[start:])
    total = float(logprobs[np.arange(len(targets)), targets].sum())
    return ChoiceLogprob(total, len(targets)), decoded + len(scored)


def _evaluate_prefix(llm: Any, prefix: list[int]) -> int:
    """Bring the KV cache to exactly ``prefix``, reusing what it holds; return tokens decoded."""
    keep = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prefix)
    if keep == 0 or not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
        keep = 0
        llm.reset()
        llm._ctx.kv_cache_clear()
    llm.n_tokens = keep
    if keep < len(prefix):
        llm.eval(prefix[keep:])  # no logits needed before the choice
    return len(prefix) - keep


def _decode_with_logits(llm: Any, tokens: list[int]) -> np.ndarray:
    """Decode ``tokens`` after the cached ones, returning the logits of every position."""
    if len(tokens) > llm.n_batch:
        raise ValueError(f"a choice of {len(tokens)} tokens exceeds the batch of {llm.n_batch}")
    n_past = llm.n_tokens
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.input_ids[n_past : n_past + len(tokens)] = tokens
    llm.n_tokens = n_past + len(tokens)
    pointer = llm._ctx.get_logits()
    return np.ctypeslib.as_array(pointer, shape=(len(tokens), llm.n_vocab())).copy()
