"""Continuous batching on one model: up to N sequences decoded together, KV kept between turns.

Serving uses this (``agent.inference.runtime`` serves benchmarks and scoring).
One engine thread owns the llama.cpp context (:mod:`agent.inference.llama_batch`):
each step puts the next token of every decoding sequence and a chunk of any
prompt still being evaluated into one batch, decodes it, and samples each
sequence with its own sampler. Requests wait in a FIFO queue and are admitted
between steps, so a new one never waits for the others to finish. Each
finished conversation stays in its slot's KV cells (see
:mod:`agent.inference.sequences`); when a newer conversation needs the slot, the
old one's cells are copied out to host memory (:mod:`agent.inference.conversations`)
and copied back for its next turn.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.inference.conversations import (
    ConversationStore,
    StoredConversation,
    store_budget_bytes,
)
from agent.inference.llama_batch import BATCH_TOKENS, LlamaSequences
from agent.inference.prompt_format import chat_prompt, format_for
from agent.inference.sequences import (
    ActiveSequence,
    BusyError,
    Cancelled,
    SequenceRequest,
    Slot,
    common_prefix,
    pick_slot,
)
from agent.inference.types import (
    Generation,
    InferenceError,
    ModelLoadError,
    PromptTooLong,
    check_kv_type,
    choose_n_ctx,
    model_id_for,
)
from shared.gguf_info import GgufError, parallel_for, read_gguf_info
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)

PREFILL_CHUNK = 128
"""Most prompt tokens one step evaluates, so decoding sequences keep streaming during a prefill."""


class BatchEngine:
    """One model decoding up to ``parallel`` sequences at once; call ``chat`` from any thread."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        profile: DeviceProfile | None = None,
        parallel: int | None = None,
        n_ctx: int | None = None,
        threads: int | None = None,
        model_id: str | None = None,
        max_waiting: int = 64,
        prefix_reuse: bool = True,
        store_bytes: int | None = None,
        repeat_penalty: float = 1.1,
        seed: int = 0,
    ) -> None:
        path = Path(model_path)
        try:
            self.info = read_gguf_info(path)
        except GgufError as exc:
            raise ModelLoadError(str(exc)) from None
        kv_type = profile.kv_cache_type if profile else "f16"
        check_kv_type(self.info, kv_type)
        budget = float(profile.memory_budget_mb) if profile else None
        if parallel is None:
            parallel = parallel_for(self.info, profile, n_ctx=n_ctx) if profile else 1
        self.parallel = parallel
        self.n_ctx = choose_n_ctx(
            self.info, n_ctx or (profile.n_ctx if profile else None), kv_type, budget, parallel
        )
        self.threads = threads or (profile.threads if profile else 1)
        self.model_id = model_id or model_id_for(path)
        self.max_waiting, self.prefix_reuse = max_waiting, prefix_reuse
        self.repeat_penalty, self.seed = repeat_penalty, seed
        self._sample_seeds = random.Random(seed)  # each sampled reply draws anew
        self._llama = LlamaSequences(
            path,
            n_ctx=self.n_ctx,
            parallel=parallel,
            threads=self.threads,
            kv_cache_type=kv_type,
            mlock=bool(profile and profile.mlock),
        )
        self.prompt_format = format_for(
            self.info.chat_template,
            bos_token=self._llama.bos_text,
            eos_token=self._llama.eos_text,
        )
        self._slots = [Slot(seq_id) for seq_id in range(parallel)]
        if store_bytes is None:
            store_bytes = store_budget_bytes(
                self.info, profile, n_ctx=self.n_ctx, parallel=parallel
            )
        self.stored = ConversationStore(store_bytes if prefix_reuse else 0)
        self.restored_conversations = 0
        self._active: list[ActiveSequence] = []
        self._waiting: collections.deque[SequenceRequest] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._resets: list[threading.Event] = []  # the engine thread alone touches the cells
        self.decoded_tokens = 0  # every token llama_decode evaluated: prompts and generations
        self.cancelled_sequences = 0
        self._thread = threading.Thread(target=self._loop, name="batch-engine", daemon=True)
        self._thread.start()
        logger.info(
            "loaded %s for %d parallel sequences (n_ctx=%d each, threads=%d, kv=%s, "
            "%.0f MB for conversations out of their cells)",
            self.model_id,
            parallel,
            self.n_ctx,
            self.threads,
            kv_type,
            store_bytes / 1e6,
        )

    # --- the calls -------------------------------------------------------------------------

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
        """Reply to a conversation; blocks until done. Raising in ``on_token`` cancels it."""
        text, stops = chat_prompt(self.prompt_format, messages, stop, continue_final=continue_final)
        seed = self._sample_seeds.getrandbits(32) if temperature > 0 else self.seed
        return self.run(SequenceRequest(text, max_tokens, temperature, stops, on_token, seed))

    def run(self, request: SequenceRequest) -> Generation:
        """Queue ``request`` and wait for its result (or its error)."""
        self.submit(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def submit(self, request: SequenceRequest) -> None:
        """Queue ``request`` (FIFO); raise BusyError when ``max_waiting`` are already waiting."""
        with self._cond:
            if self._closing:
                raise InferenceError(f"{self.model_id}: the model has been closed")
            if len(self._waiting) >= self.max_waiting:
                raise BusyError(f"{len(self._waiting)} requests are already waiting")
            self._waiting.append(request)
            self._cond.notify()

    def load(self) -> tuple[int, int]:
        """(sequences decoding, requests waiting) right now."""
        with self._cond:
            return len(self._active), len(self._waiting)

    def kept_conversations(self) -> int:
        """Idle slots still holding a conversation's KV."""
        with self._cond:
            return sum(1 for s in self._slots if not s.busy and s.tokens)

    def reset(self) -> None:
        """Forget every kept or stored conversation (sequences running now are not touched)."""
        done = threading.Event()
        with self._cond:
            self._resets.append(done)
            self._cond.notify()
        done.wait()

    def close(self) -> None:
        """Fail what is queued or running, stop the engine thread and free the model."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=60)
        if self._thread.is_alive():  # still inside llama_decode: freeing now would crash
            logger.warning("%s: the engine did not stop; not freeing the model", self.model_id)
            return
        self._llama.close()

    # --- the engine thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._closing or self._active or self._waiting or self._resets):
                    self._cond.wait()
                if self._closing:
                    break
                self._forget_idle()
                self._admit()
            self._drop_cancelled()
            if not self._active:
                continue
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - a bug must not leave callers waiting forever
                logger.exception("batch step failed")
                for seq in list(self._active):
                    self._end(seq, error=InferenceError(f"generation failed: {exc}"))
        self._fail_all(InferenceError(f"{self.model_id}: the model has been closed"))

    def _forget_idle(self) -> None:
        """Carry out reset(): clear the cells of every idle slot (called with the lock held)."""
        if not self._resets:
            return
        for slot in self._slots:
            if not slot.busy:
                self._llama.forget(slot.seq_id)
                slot.forget()
                slot.last_used = 0.0
        self.stored.clear()
        for done in self._resets:
            done.set()
        self._resets.clear()

    def _admit(self) -> None:
        """Move waiting requests into idle slots, oldest first (called with the lock held)."""
        while self._waiting:
            request = self._waiting[0]
            if request.cancelled.is_set():
                self._waiting.popleft()
                self._settle(request, error=Cancelled("cancelled while waiting"))
                continue
            tokens = self._tokenize(request.text)
            slot = (
                pick_slot(self._slots, request.text, tokens, share_prefix=self.stored.max_bytes > 0)
                if self.prefix_reuse
                else None
            )
            if slot is None:
                slot = next((s for s in self._slots if not s.busy), None)
            if slot is None:
                return
            self._waiting.popleft()
            if self.prefix_reuse:
                self._swap(slot, request.text)
            self._place(request, slot, tokens)

    def _swap(self, slot: Slot, prompt: str) -> None:
        """Make ``slot`` hold the conversation ``prompt`` extends, if one is kept anywhere.

        The conversation in the slot is stored first unless the prompt extends it.
        """
        if slot.text and prompt.startswith(slot.text):
            return
        if slot.text and self.stored.max_bytes:
            state = self._llama.save(slot.seq_id)
            if state:
                self.stored.put(StoredConversation(slot.text, slot.history, slot.tokens, state))
        kept = self.stored.take(prompt)
        if kept is None:
            return
        self._llama.forget(slot.seq_id)
        slot.forget()
        if self._llama.restore(slot.seq_id, kept.state):
            slot.tokens, slot.text, slot.history = list(kept.tokens), kept.text, kept.history
            self.restored_conversations += 1
        else:
            logger.warning("%s: a stored conversation could not be restored", self.model_id)
            self._llama.forget(slot.seq_id)

    def _place(self, request: SequenceRequest, slot: Slot, tokens: list[int]) -> None:
        if self.prefix_reuse and slot.text and request.text.startswith(slot.text):
            tail = request.text[len(slot.text) :]  # keep the exact tokens of past turns
            tokens = slot.history + self._llama.tokenize(tail, add_bos=False)
        keep = min(common_prefix(slot.tokens, tokens), len(tokens) - 1) if self.prefix_reuse else 0
        room = self.n_ctx - len(tokens)
        if room < 1:
            self._settle(
                request,
                error=PromptTooLong(
                    f"the prompt is {len(tokens)} tokens, the context holds {self.n_ctx}"
                ),
            )
            return
        request.max_tokens = max(1, min(request.max_tokens, room))
        self._llama.forget(slot.seq_id, keep)
        slot.forget()
        slot.tokens, slot.busy = tokens[:keep], True
        sampler = self._llama.sampler(request.temperature, request.seed, self.repeat_penalty)
        self._active.append(ActiveSequence(request, slot, tokens, keep, sampler))

    def _tokenize(self, text: str) -> list[int]:
        bos = self._llama.bos_text
        return self._llama.tokenize(text, add_bos=not (bos and text.startswith(bos)))

    def _step(self) -> None:
        """One llama_decode: a token of every decoding sequence plus prompt chunks, then sample."""
        outputs = self._fill_batch()
        status = self._llama.decode()
        self.decoded_tokens += self._llama.batch_tokens
        if status != 0:
            failed = [seq for seq, _ in outputs] + [s for s in self._active if s.pending]
            for seq in dict.fromkeys(failed):
                self._end(seq, error=InferenceError(f"llama_decode failed with status {status}"))
            return
        for seq, index in outputs:
            token = self._llama.sample(seq.sampler, index)
            is_eog = self._llama.is_eog(token)
            try:
                finished = seq.accept(token, b"" if is_eog else self._llama.piece(token), is_eog)
            except Exception as exc:  # noqa: BLE001 - a consumer that raises has gone away
                logger.info("sequence %d cancelled by its consumer: %s", seq.slot.seq_id, exc)
                self._end(seq, error=Cancelled(f"the client went away: {exc}"))
                continue
            if finished:
                self._end(seq)

    def _fill_batch(self) -> list[tuple[ActiveSequence, int]]:
        """Put the step's tokens in the batch; return the sequences to sample and their row."""
        outputs: list[tuple[ActiveSequence, int]] = []
        self._llama.clear_batch()
        for seq in self._active:
            if seq.next_token is not None:
                outputs.append((seq, self._add(seq, seq.next_token, logits=True)))
                seq.next_token = None
        budget = min(PREFILL_CHUNK, BATCH_TOKENS - self._llama.batch_tokens)
        for seq in self._active:  # oldest first: a prompt is never overtaken by a later one
            if budget <= 0:
                break
            chunk = seq.take_prompt(budget)
            budget -= len(chunk)
            for i, token in enumerate(chunk):
                last = not seq.pending and i == len(chunk) - 1
                row = self._add(seq, token, logits=last)
            if chunk and not seq.pending:
                seq.prefill_done_at = time.perf_counter()
                outputs.append((seq, row))
        return outputs

    def _add(self, seq: ActiveSequence, token: int, *, logits: bool) -> int:
        row = self._llama.add(token, seq.position, seq.slot.seq_id, logits=logits)
        seq.slot.tokens.append(token)
        return row

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self._active if s.request.cancelled.is_set()]:
            self._end(seq, error=Cancelled("cancelled by the client"))

    def _end(self, seq: ActiveSequence, error: InferenceError | None = None) -> None:
        """Finish a sequence: free its slot (a failed one's cells too) and wake its caller."""
        self._llama.free_sampler(seq.sampler)
        slot, result = seq.slot, None
        if error is None:
            result = seq.finish_generation(self._llama.eos_text)
        else:
            self._llama.forget(slot.seq_id)
            slot.forget()
            self.cancelled_sequences += isinstance(error, Cancelled)
        with self._cond:
            self._active.remove(seq)
            slot.busy = False
        self._settle(seq.request, result=result, error=error)

    @staticmethod
    def _settle(
        request: SequenceRequest,
        *,
        result: Generation | None = None,
        error: InferenceError | None = None,
    ) -> None:
        request.result, request.error = result, error
        request.done.set()

    def _fail_all(self, error: InferenceError) -> None:
        for seq in list(self._active):
            self._end(seq, error=error)
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for request in waiting:
            self._settle(request, error=error)
        with self._cond:
            for done in self._resets:
                done.set()
