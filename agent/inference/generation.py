"""The token loop of one generation: sampling via llama-cpp-python, stop handling, timing.

The llama objects are passed in, so this module needs no llama.cpp import;
``agent.inference.runtime`` owns the model and calls :class:`GenerationRun`.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Callable
from typing import Any

from agent.inference.streaming import StopScanner
from agent.inference.types import Generation

logger = logging.getLogger(__name__)


class GenerationRun:
    """One generation: the token loop, stop handling and timing."""

    def __init__(
        self,
        llm: Any,
        is_eog: Callable[[int], bool],
        evaluated: list[tuple[int, float]],
        max_tokens: int,
        scanner: StopScanner,
        on_token: Callable[[str], None] | None,
    ) -> None:
        self.llm = llm
        self.is_eog = is_eog
        self.evaluated = evaluated  # filled by the runtime's counting wrapper of Llama.eval
        self.max_tokens = max_tokens
        self.scanner = scanner
        self.on_token = on_token
        self.out_tokens: list[int] = []
        self.raw_text = ""
        self.eog_token: int | None = None
        self.stopped_by_string = False

    def execute(self, tokens: list[int], temperature: float, repeat_penalty: float) -> Generation:
        """Generate from ``tokens`` (llama-cpp-python reuses the cached common prefix)."""
        llm = self.llm
        self.evaluated.clear()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish, ttft = "length", 0.0
        started = time.perf_counter()
        sampler = {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
        first = True
        for token in llm.generate(tokens, reset=True, repeat_penalty=repeat_penalty, **sampler):
            if first:
                ttft, first = time.perf_counter() - started, False
            if self.is_eog(token):
                self.eog_token, finish = token, "stop"
                break
            self.out_tokens.append(token)
            piece = decoder.decode(bytes(llm.detokenize([token])))
            if self._push(piece):
                finish = "stop"
                break
            if len(self.out_tokens) >= self.max_tokens:
                break
        self._push(decoder.decode(b"", final=True), final=True)
        total = time.perf_counter() - started
        evaluated = self.evaluated
        prefill_tokens, prefill_s = evaluated[0] if evaluated else (0, 0.0)
        return Generation(
            text=self.scanner.text,
            finish_reason=finish,
            prompt_tokens=len(tokens),
            prompt_tokens_evaluated=prefill_tokens,
            generated_tokens=len(self.out_tokens),
            prefill_s=prefill_s,
            ttft_s=ttft,
            decode_s=max(0.0, total - ttft),
            total_s=total,
        )

    def _push(self, piece: str, *, final: bool = False) -> bool:
        """Feed text to the stop scanner and stream what is safe; True when a stop string hit."""
        self.raw_text += piece
        emitted, hit = self.scanner.feed(piece, final=final)
        if emitted and self.on_token is not None:
            try:
                self.on_token(emitted)
            except Exception:  # a streaming consumer must not break generation
                logger.exception("on_token callback failed")
        if hit:
            self.stopped_by_string = True
        return hit
