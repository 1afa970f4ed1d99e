"""The llama.cpp adapter: load a GGUF under a device profile and generate, timed per phase.

This is the only module that imports ``llama_cpp``. Per-call timings are taken
here (llama-cpp-python's own per-phase timings are not reliable): the prompt
tokens actually evaluated are counted by wrapping ``Llama.eval``, so callers
can see how much of a prompt the KV cache saved.
"""

from __future__ import annotations

import ctypes
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llama_cpp

from agent.engine.build import amx_libraries
from agent.inference.generation import GenerationRun
from agent.inference.measurements import RuntimeMeasurements
from agent.inference.prompt_format import PlainFormat, PromptFormat, chat_prompt, format_for
from agent.inference.streaming import StopScanner
from agent.inference.types import (
    DEFAULT_N_CTX,
    MIN_N_CTX,
    ChatModel,
    EmptyPrompt,
    Generation,
    InferenceError,
    ModelLoadError,
    ModelTooLarge,
    PromptTooLong,
    check_kv_type,
    choose_n_ctx,
    model_id_for,
)
from shared.gguf_info import GgufError, GgufInfo, read_gguf_info
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)

KV_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}


class ModelRuntime(RuntimeMeasurements, ChatModel):
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
        check_kv_type(self.info, self.kv_cache_type)
        budget = memory_budget_mb if memory_budget_mb is not None else _budget(profile)
        self.n_ctx = choose_n_ctx(
            self.info, n_ctx or (profile.n_ctx if profile else None), self.kv_cache_type, budget
        )
        self.threads = threads or (profile.threads if profile else 1)
        self.model_id = model_id or model_id_for(path)
        self.parallel = 1  # one sequence: calls take turns (serving batches with BatchEngine)
        self.seed = seed
        self._sample_seeds = random.Random(seed)
        self.repeat_penalty = repeat_penalty  # mild: small models loop badly at temperature 0
        self._lock = threading.Lock()
        self._llm = self._load(path, mlock or bool(profile and profile.mlock))
        self.prompt_format: PromptFormat = format_for(
            self.info.chat_template,
            bos_token=self._token_text(self._llm.token_bos()),
            eos_token=self._token_text(self._llm.token_eos()),
        )
        self.instruction_tuned = not isinstance(self.prompt_format, PlainFormat)
        self._eog_text = self._token_text(self._llm.token_eos())
        self._conv_text = ""
        self._conv_tokens: list[int] = []
        self._evaluated: list[tuple[int, float]] = []
        self._wrap_eval()
        logger.info(
            "loaded %s (%s, n_ctx=%d, threads=%d, kv=%s, format=%s)",
            self.model_id,
            self.info.quantization,
            self.n_ctx,
            self.threads,
            self.kv_cache_type,
            self.prompt_format.name,
        )

    def _load(self, path: Path, mlock: bool) -> Any:
        kv = KV_TYPES[self.kv_cache_type]
        load_cpu_backends()
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
        """Reply to a conversation; a conversation that extends the last one reuses its KV cache."""
        text, stops = chat_prompt(self.prompt_format, messages, stop, continue_final=continue_final)
        with self._using():
            return self._generate(text, max_tokens, temperature, stops, on_token)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        """Continue raw text: no chat formatting and only the caller's stop strings."""
        if not prompt.strip():
            raise EmptyPrompt("the prompt is empty")
        with self._using():
            return self._generate(prompt, max_tokens, temperature, tuple(stop or ()), on_token)

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
        stops: tuple[str, ...],
        on_token: Callable[[str], None] | None,
    ) -> Generation:
        tokens = self._tokens_for(text)
        if temperature > 0:  # each sampled reply draws anew (llama.cpp reseeds per call)
            self._llm.set_seed(self._sample_seeds.getrandbits(32))
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise PromptTooLong(
                f"the prompt is {len(tokens)} tokens, the context holds {self.n_ctx}"
            )
        run = GenerationRun(
            self._llm,
            self._is_eog,
            self._evaluated,
            max(1, min(max_tokens, room)),
            StopScanner(stops),
            on_token,
        )
        result = run.execute(tokens, temperature, self.repeat_penalty)
        self._remember(text, tokens, run)
        return result

    def _is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))

    def _remember(self, text: str, tokens: list[int], run: GenerationRun) -> None:
        """Keep the exact token history so the next turn's prompt extends it token for token."""
        if run.stopped_by_string:
            self._conv_text, self._conv_tokens = text, list(tokens)
            return
        eog = [run.eog_token] if run.eog_token is not None else []
        eog_text = self._token_text(run.eog_token) if run.eog_token is not None else ""
        self._conv_text = text + run.raw_text + eog_text
        self._conv_tokens = list(tokens) + run.out_tokens + eog

    def _forget(self) -> None:
        self._conv_text, self._conv_tokens = "", []
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def reset(self) -> None:
        """Forget the cached conversation (the next call evaluates its whole prompt)."""
        with self._using():
            self._forget()

    @contextmanager
    def _using(self) -> Iterator[None]:
        """Serialise calls; a closed runtime refuses them clearly."""
        with self._lock:
            if self._llm is None:
                raise InferenceError(f"{self.model_id}: the model has been closed")
            yield

    def close(self) -> None:
        """Free the model and its context (idempotent)."""
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()


LIB_DIR = Path(llama_cpp.__file__).parent / "lib"


def load_cpu_backends() -> None:
    """Load ggml's CPU backend, once, before any model.

    A portable build (``GGML_BACKEND_DL``, :mod:`agent.engine.build`) ships one CPU library
    per CPU generation next to libllama, and ggml loads the best one this CPU supports; but
    ggml looks for them beside the executable (python's bin/), so it is told where they are.
    A build with the CPU backend linked in has it registered already.
    """
    ggml = _ggml_of_libllama()
    if ggml.ggml_backend_reg_count() == 0:
        ggml.ggml_backend_load_all_from_path(str(LIB_DIR).encode())


def _ggml_of_libllama() -> ctypes.CDLL:
    """The ggml registry functions, looked up through libllama's own dependencies.

    ``llama_cpp._ggml`` opens ``libggml.so`` by path while libllama needs ``libggml.so.0``:
    two copies with two registries, and backends loaded into the first stay invisible to
    libllama ("no backends are loaded"). A symbol looked up on libllama's handle resolves
    in the copy libllama uses.
    """
    lib = llama_cpp.llama_cpp._lib
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_count.argtypes = []
    lib.ggml_backend_load_all_from_path.restype = None
    lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    return lib


def loaded_cpu_backends() -> list[Path]:
    """The ggml CPU libraries mapped into this process (the variant chosen at run time)."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        paths = {line.split()[-1] for line in maps if "libggml-cpu" in line}
    return sorted(Path(p) for p in paths)


def engine_facts() -> dict[str, Any]:
    """What the engine is: version, the CPU library loaded, llama.cpp's system info, AMX code."""
    load_cpu_backends()
    libraries = loaded_cpu_backends()
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "cpu_backend": ", ".join(p.name for p in libraries) or None,
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "amx_kernels": bool(amx_libraries({p.name: p.read_bytes() for p in libraries})),
    }


def _budget(profile: DeviceProfile | None) -> float | None:
    return float(profile.memory_budget_mb) if profile else None


__all__ = [
    "DEFAULT_N_CTX",
    "MIN_N_CTX",
    "EmptyPrompt",
    "Generation",
    "InferenceError",
    "ModelLoadError",
    "ModelRuntime",
    "ModelTooLarge",
    "PromptTooLong",
    "engine_facts",
    "load_cpu_backends",
    "loaded_cpu_backends",
    "choose_n_ctx",
    "model_id_for",
]
