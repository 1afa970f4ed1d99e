"""The llama.cpp adapter for batched serving: one context holding several sequences.

llama-cpp-python's ``Llama`` holds one sequence, so this uses its low-level
API: a context with ``parallel`` sequence ids (each with its own ``n_ctx`` KV
cells), one ``llama_batch`` filled token by token, and a sampler chain per
sequence. :class:`agent.inference.batch.BatchEngine` schedules; only its
engine thread calls in here after loading.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp
from llama_cpp import _internals
from llama_cpp._logger import set_verbose

from agent.inference.runtime import KV_TYPES, load_cpu_backends
from agent.inference.types import ModelLoadError

BATCH_TOKENS = 512
PENALTY_LAST_N = 64
PIECE_BYTES = 256


class LlamaSequences:
    """A loaded model with a context of ``parallel`` sequences and a batch to decode them."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        parallel: int,
        threads: int,
        kv_cache_type: str,
        mlock: bool = False,
    ) -> None:
        set_verbose(False)  # llama.cpp's per-context log lines would flood the agent's log
        load_cpu_backends()
        model_params = llama_cpp.llama_model_default_params()
        model_params.use_mmap, model_params.use_mlock = True, mlock
        try:
            self._model = _internals.LlamaModel(
                path_model=str(path), params=model_params, verbose=False
            )
            self._ctx = _internals.LlamaContext(
                model=self._model,
                params=_context_params(n_ctx, parallel, threads, kv_cache_type),
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"{path}: llama.cpp could not load the model: {exc}") from None
        self._vocab = self._model.vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._piece_buf = ctypes.create_string_buffer(PIECE_BYTES)
        self._batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self.bos_text = self.special_text(self._model.token_bos())
        self.eos_text = self.special_text(self._model.token_eos())

    # --- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        """Tokens of ``text``, special tokens (template markers) parsed."""
        return list(self._model.tokenize(text.encode(), add_bos=add_bos, special=True))

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (a multi-byte character may span several)."""
        if token < 0:
            return b""
        n = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece_buf, PIECE_BYTES, 0, special
        )
        return self._piece_buf.raw[: max(0, n)]

    def special_text(self, token: int) -> str:
        """The text of a special token such as BOS or EOS."""
        return self.piece(token, special=True).decode(errors="replace")

    def is_eog(self, token: int) -> bool:
        """True for a token that ends the model's turn."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # --- sequences, batch, sampling ---------------------------------------------------------

    def forget(self, seq_id: int, start: int = 0) -> None:
        """Free the sequence's KV cells from position ``start`` on."""
        self._ctx.kv_cache_seq_rm(seq_id, start, -1)

    def save(self, seq_id: int) -> bytes:
        """A copy of the sequence's KV cells (empty if llama.cpp could not copy them)."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx.ctx, seq_id)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buffer, size, seq_id)
        return bytes(buffer)[:written] if written == size else b""

    def restore(self, seq_id: int, state: bytes) -> bool:
        """Put a copy made by :meth:`save` into the (cleared) sequence; False if refused."""
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        return llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buffer, len(state), seq_id) > 0

    def clear_batch(self) -> None:
        """Start filling a new batch."""
        self._batch.n_tokens = 0

    def add(self, token: int, position: int, seq_id: int, *, logits: bool) -> int:
        """Append one token of one sequence to the batch; return its row."""
        batch, row = self._batch, self._batch.n_tokens
        batch.token[row], batch.pos[row] = token, position
        batch.n_seq_id[row], batch.seq_id[row][0] = 1, seq_id
        batch.logits[row] = logits
        batch.n_tokens = row + 1
        return row

    @property
    def batch_tokens(self) -> int:
        """Tokens in the batch being filled."""
        return int(self._batch.n_tokens)

    def decode(self) -> int:
        """Evaluate the batch; llama.cpp's status (0 is success)."""
        return int(llama_cpp.llama_decode(self._ctx.ctx, self._batch))

    def sampler(self, temperature: float, seed: int, repeat_penalty: float) -> object:
        """A sampler chain of one sequence: repetition penalty, then greedy or top-k/p sampling."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        steps = [
            llama_cpp.llama_sampler_init_penalties(
                self._n_vocab, PENALTY_LAST_N, repeat_penalty, 0.0, 0.0
            )
        ]
        if temperature <= 0:
            steps.append(llama_cpp.llama_sampler_init_greedy())
        else:
            steps += [
                llama_cpp.llama_sampler_init_top_k(40),
                llama_cpp.llama_sampler_init_top_p(0.95, 1),
                llama_cpp.llama_sampler_init_min_p(0.05, 1),
                llama_cpp.llama_sampler_init_temp(temperature),
                llama_cpp.llama_sampler_init_dist(seed),
            ]
        for step in steps:
            llama_cpp.llama_sampler_chain_add(chain, step)
        return chain

    def sample(self, sampler: object, row: int) -> int:
        """Sample (and accept) the next token from the logits of batch row ``row``."""
        return int(llama_cpp.llama_sampler_sample(sampler, self._ctx.ctx, row))

    @staticmethod
    def free_sampler(sampler: object) -> None:
        """Free a sampler chain and its steps."""
        llama_cpp.llama_sampler_free(sampler)

    def close(self) -> None:
        """Free the batch, the context and the model."""
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()
        self._model.close()


def _context_params(
    n_ctx: int, parallel: int, threads: int, kv_cache_type: str
) -> llama_cpp.llama_context_params:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx * parallel
    params.n_seq_max = parallel
    # each sequence its own pool of n_ctx cells: attention sees only its own cells, which keeps
    # batched text equal to text served alone (one shared pool changed most greedy texts, see
    # docs/BENCHMARKS.md), at the cost of a step splitting where idle slots sit between busy ones
    params.kv_unified = False
    params.n_batch = params.n_ubatch = BATCH_TOKENS
    params.n_threads = params.n_threads_batch = threads
    params.type_k = params.type_v = KV_TYPES[kv_cache_type]
    params.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if kv_cache_type != "f16"  # a quantised V cache needs it
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    params.swa_full = True  # keeps sliding-window caches trimmable, so prefixes are reused
    return params
