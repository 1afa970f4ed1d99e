"""The llama.cpp adapter: load a GGUF under a device profile and generate, timed per phase.

This is the only module that imports ``llama_cpp``. Per-call timings are taken
here (llama-cpp-python's own per-phase timings are not reliable): the prompt
tokens actually evaluated are counted by wrapping ``Llama.eval``, so callers
can see how much of a prompt the KV cache saved.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from agent.prompt_format import (
    ChatTemplateFormat,
    PlainFormat,
    PromptFormat,
    PromptFormatError,
)
from agent.streaming import StopScanner
from shared.demo_models import DEMO_MODELS
from shared.gguf_info import GgufError, GgufInfo, estimate_memory, read_gguf_info
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)

DEFAULT_N_CTX = 2048
MIN_N_CTX = 256
_KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0,
             "q4_0": llama_cpp.GGML_TYPE_Q4_0}  # fmt: skip


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


def model_id_for(path: Path) -> str:
    """The demo model id for a demo file, else the file name without ``.gguf``."""
    for model in DEMO_MODELS.values():
        if model.filename == path.name:
            return model.model_id
    return path.name.removesuffix(".gguf").lower()


def choose_n_ctx(
    info: GgufInfo, requested: int | None, kv_cache_type: str, budget_mb: float | None
) -> int:
    """The context size to load with: the requested one, else the largest that fits the budget.

    Raises :class:`ModelTooLarge` (with the estimate and the budget) when even
    the smallest usable context does not fit.
    """
    trained = info.context_length or DEFAULT_N_CTX
    n_ctx = min(requested or DEFAULT_N_CTX, trained)
    if budget_mb is None:
        return n_ctx
    while True:
        estimate = estimate_memory(info, n_ctx=n_ctx, kv_cache_type=kv_cache_type)
        if estimate.total_mb <= budget_mb:
            return n_ctx
        if requested is not None or n_ctx <= MIN_N_CTX:
            raise ModelTooLarge(
                f"{info.path.name}: needs an estimated {estimate.total_mb:.0f} MB "
                f"(weights {estimate.weights / 1e6:.0f} MB, "
                f"KV cache {estimate.kv_cache / 1e6:.0f} MB at n_ctx={n_ctx}), "
                f"memory budget is {budget_mb:.0f} MB"
            )
        n_ctx = max(MIN_N_CTX, n_ctx // 2)


class ModelRuntime:
    """One loaded model; calls are serialised (llama.cpp contexts are not thread-safe)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        profile: DeviceProfile | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
        kv_cache_type: str | None = None,
        seed: int = 0,
        memory_budget_mb: float | None = None,
        mlock: bool = False,
        model_id: str | None = None,
        repeat_penalty: float = 1.1,
    ) -> None:
        path = Path(model_path)
        try:
            self.info: GgufInfo = read_gguf_info(path)
        except GgufError as exc:
            raise ModelLoadError(str(exc)) from None
        self.kv_cache_type = kv_cache_type or (profile.kv_cache_type if profile else "f16")
        if self.kv_cache_type not in _KV_TYPES:
            raise ModelLoadError(f"unknown KV-cache type {self.kv_cache_type!r}")
        budget = memory_budget_mb if memory_budget_mb is not None else _budget(profile)
        self.n_ctx = choose_n_ctx(
            self.info, n_ctx or (profile.n_ctx if profile else None), self.kv_cache_type, budget
        )
        self.threads = threads or (profile.threads if profile else 1)
        self.model_id = model_id or model_id_for(path)
        self.seed = seed
        self.repeat_penalty = repeat_penalty  # mild: small models loop badly at temperature 0
        self._lock = threading.Lock()
        self._llm = self._load(path, mlock or bool(profile and profile.mlock))
        self.instruction_tuned: bool = self.info.instruction_tuned
        self.prompt_format: PromptFormat = self._prompt_format()
        self._eog_text = self._token_text(self._llm.token_eos())
        self._conv_text = ""
        self._conv_tokens: list[int] = []
        self._evaluated: list[tuple[int, float]] = []
        self._wrap_eval()
        logger.info(
            "loaded %s (%s, n_ctx=%d, threads=%d, kv=%s, format=%s)",
            self.model_id, self.info.quantization, self.n_ctx, self.threads,
            self.kv_cache_type, self.prompt_format.name,
        )  # fmt: skip

    def _load(self, path: Path, mlock: bool) -> Any:
        kv = _KV_TYPES[self.kv_cache_type]
        try:
            return llama_cpp.Llama(
                str(path),
                n_ctx=self.n_ctx,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                seed=self.seed,
                use_mmap=True,
                use_mlock=mlock,
                type_k=kv,
                type_v=kv,
                flash_attn=self.kv_cache_type != "f16",  # a quantised V cache needs it
                swa_full=True,  # keeps sliding-window caches trimmable, so prefixes are reused
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"{path}: llama.cpp could not load the model: {exc}") from None

    def _prompt_format(self) -> PromptFormat:
        template = self.info.chat_template
        if not template:
            return PlainFormat()
        try:
            return ChatTemplateFormat(
                template,
                bos_token=self._token_text(self._llm.token_bos()),
                eos_token=self._token_text(self._llm.token_eos()),
            )
        except PromptFormatError as exc:
            logger.warning("%s: %s; using plain completion", self.model_id, exc)
            self.instruction_tuned = False
            return PlainFormat()

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self._llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def _wrap_eval(self) -> None:
        """Count the tokens llama.cpp really decodes (prefix-cache hits are not decoded)."""
        original = self._llm.eval

        def counting_eval(tokens: Sequence[int]) -> None:
            started = time.perf_counter()
            original(tokens)
            self._evaluated.append((len(tokens), time.perf_counter() - started))

        self._llm.eval = counting_eval

    @property
    def context_tokens(self) -> int:
        """Tokens currently held in the KV cache."""
        return int(self._llm.n_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes, as the model tokenises it."""
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        """Reply to a conversation; a conversation that extends the last one reuses its KV cache."""
        if not messages or not any(m.get("content", "").strip() for m in messages):
            raise EmptyPrompt("the prompt is empty")
        try:
            text = self.prompt_format.render(messages)
        except PromptFormatError as exc:
            raise InferenceError(str(exc)) from None
        with self._lock:
            return self._generate(text, max_tokens, temperature, stop, on_token)

    def complete(
        self, prompt: str, *, max_tokens: int = 256, temperature: float = 0.0,
        stop: list[str] | None = None, on_token: Callable[[str], None] | None = None,
    ) -> Generation:  # fmt: skip
        """Continue raw text (no chat formatting), for benchmarks and base models."""
        if not prompt.strip():
            raise EmptyPrompt("the prompt is empty")
        with self._lock:
            return self._generate(prompt, max_tokens, temperature, stop, on_token)

    def _tokens_for(self, text: str) -> list[int]:
        """Tokens of ``text``, keeping the exact tokens of the previous turn when it extends it."""
        if self._conv_text and text.startswith(self._conv_text):
            tail = text[len(self._conv_text) :].encode()
            return self._conv_tokens + self._llm.tokenize(tail, add_bos=False, special=True)
        bos = self._token_text(self._llm.token_bos())
        add_bos = not (bos and text.startswith(bos))
        return list(self._llm.tokenize(text.encode(), add_bos=add_bos, special=True))

    def _generate(
        self,
        text: str,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None,
        on_token: Callable[[str], None] | None,
    ) -> Generation:
        tokens = self._tokens_for(text)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise PromptTooLong(
                f"the prompt is {len(tokens)} tokens, the context holds {self.n_ctx}"
            )
        stops = tuple(stop or ()) + tuple(self.prompt_format.stop)
        run = _Run(self, max(1, min(max_tokens, room)), StopScanner(stops), on_token)
        result = run.execute(tokens, temperature)
        self._remember(text, tokens, run)
        return result

    def _remember(self, text: str, tokens: list[int], run: _Run) -> None:
        """Keep the exact token history so the next turn's prompt extends it token for token."""
        if run.stopped_by_string:
            self._conv_text, self._conv_tokens = text, list(tokens)
            return
        eog = [run.eog_token] if run.eog_token is not None else []
        eog_text = self._token_text(run.eog_token) if run.eog_token is not None else ""
        self._conv_text = text + run.raw_text + eog_text
        self._conv_tokens = list(tokens) + run.out_tokens + eog

    def reset(self) -> None:
        """Forget the cached conversation (the next call evaluates its whole prompt)."""
        with self._lock:
            self._conv_text, self._conv_tokens = "", []
            self._llm.reset()

    def close(self) -> None:
        """Free the model and its context."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()


class _Run:
    """One generation: the token loop, stop handling and timing."""

    def __init__(
        self,
        runtime: ModelRuntime,
        max_tokens: int,
        scanner: StopScanner,
        on_token: Callable[[str], None] | None,
    ) -> None:
        self.rt = runtime
        self.max_tokens = max_tokens
        self.scanner = scanner
        self.on_token = on_token
        self.out_tokens: list[int] = []
        self.raw_text = ""
        self.eog_token: int | None = None
        self.stopped_by_string = False

    def execute(self, tokens: list[int], temperature: float) -> Generation:
        llm = self.rt._llm
        self.rt._evaluated.clear()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish, ttft = "length", 0.0
        started = time.perf_counter()
        sampler = {"temp": temperature, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
        penalty = self.rt.repeat_penalty
        for token in llm.generate(tokens, reset=True, repeat_penalty=penalty, **sampler):
            if not self.out_tokens and self.eog_token is None:
                ttft = time.perf_counter() - started
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
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
        evaluated = self.rt._evaluated
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


def _budget(profile: DeviceProfile | None) -> float | None:
    return float(profile.memory_budget_mb) if profile else None
