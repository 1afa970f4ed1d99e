"""What inference calls return and raise, and the pre-load checks (no llama.cpp here).

``agent.inference.runtime`` re-exports all of it; callers import from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.demo_models import DEMO_MODELS
from shared.gguf_info import GgufInfo, estimate_memory
from shared.profiles import KV_BYTES_PER_ELEMENT

DEFAULT_N_CTX = 2048
MIN_N_CTX = 256


class InferenceError(Exception):
    """Base of every error the runtime reports; the runtime stays usable after one."""


class ModelLoadError(InferenceError):
    """The model file is missing, not a GGUF, or llama.cpp refused it."""


class ModelTooLarge(InferenceError):
    """The memory estimate exceeds the budget; raised before anything is loaded."""


class EmptyPrompt(InferenceError):
    """No messages, or only blank ones."""


class PromptTooLong(InferenceError):
    """The prompt does not fit the context window."""


@dataclass(frozen=True)
class Generation:
    """One generated reply and what it cost, measured by the runtime itself."""

    text: str
    finish_reason: str  # "stop" (end of turn or stop string) or "length"
    prompt_tokens: int
    prompt_tokens_evaluated: int  # prompt tokens not served from the KV cache
    generated_tokens: int
    prefill_s: float
    ttft_s: float
    decode_s: float
    total_s: float

    @property
    def decode_tok_s(self) -> float:
        """Generated tokens per second after the first one."""
        after_first = self.generated_tokens - 1
        return after_first / self.decode_s if after_first > 0 and self.decode_s > 0 else 0.0

    @property
    def prefill_tok_s(self) -> float:
        """Evaluated prompt tokens per second."""
        evaluated = self.prompt_tokens_evaluated
        return evaluated / self.prefill_s if evaluated and self.prefill_s > 0 else 0.0


class ChatModel(Protocol):
    """The one call refinement, judging and serving make (``ModelRuntime`` fits)."""

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        on_token: Callable[[str], None] | None = None,
        continue_final: bool = False,
    ) -> Generation:
        """Reply to a conversation (``continue_final``: go on with its last, partial answer)."""
        ...


def model_id_for(path: Path) -> str:
    """The demo model id for a demo file, else the file name without ``.gguf``."""
    for model in DEMO_MODELS.values():
        if model.filename == path.name:
            return model.model_id
    return path.name.removesuffix(".gguf").lower()


def choose_n_ctx(
    info: GgufInfo,
    requested: int | None,
    kv_cache_type: str,
    budget_mb: float | None,
    parallel: int = 1,
) -> int:
    """The context size per sequence: the requested one, else the largest that fits the budget.

    Raises :class:`ModelTooLarge` (with the estimate and the budget) when even
    the smallest usable context does not fit.
    """
    trained = info.context_length or DEFAULT_N_CTX
    n_ctx = min(requested or DEFAULT_N_CTX, trained)
    if budget_mb is None:
        return n_ctx
    while True:
        estimate = estimate_memory(
            info, n_ctx=n_ctx, kv_cache_type=kv_cache_type, parallel=parallel
        )
        if estimate.total_mb <= budget_mb:
            return n_ctx
        if requested is not None or n_ctx <= MIN_N_CTX:
            raise ModelTooLarge(
                f"{info.path.name}: needs an estimated {estimate.total_mb:.0f} MB "
                f"(weights {estimate.weights / 1e6:.0f} MB, "
                f"KV cache {estimate.kv_cache / 1e6:.0f} MB at n_ctx={n_ctx} "
                f"for {parallel} sequence{'s' if parallel > 1 else ''}), "
                f"memory budget is {budget_mb:.0f} MB"
            )
        n_ctx = max(MIN_N_CTX, n_ctx // 2)


def check_kv_type(info: GgufInfo, kv_cache_type: str) -> None:
    """Refuse a KV-cache type llama.cpp would reject, with the reason (it only says 'failed')."""
    if kv_cache_type not in KV_BYTES_PER_ELEMENT:
        raise ModelLoadError(
            f"unknown KV-cache type {kv_cache_type!r}, use one of {list(KV_BYTES_PER_ELEMENT)}"
        )
    if kv_cache_type != "f16" and (info.key_length % 32 or info.value_length % 32):
        raise ModelLoadError(
            f"{info.path.name}: a {kv_cache_type} KV cache needs attention head sizes divisible "
            f"by 32, this model has {info.key_length}/{info.value_length}; use f16"
        )
