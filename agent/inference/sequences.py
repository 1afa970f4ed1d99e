"""Sequences and slots of the batching engine: bookkeeping only, no llama.cpp here.

A *slot* is one llama.cpp sequence id with its own KV cells. A finished
request leaves its conversation in the slot's cells, so the next turn of that
conversation (a prompt that extends it) only evaluates its new tokens; an
idle slot is reused least-recently-used first when no kept conversation
shares a prefix with the new prompt (with the conversation store on, a shared
system prompt is enough).
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.inference.streaming import StopScanner
from agent.inference.types import Generation, InferenceError

SHARED_PREFIX_TOKENS = 16
"""Fewest shared leading tokens (a system prompt) worth taking a slot whose conversation
must first be stored: below this, evaluating them costs about what the copy does."""


class Cancelled(InferenceError):
    """The client went away; its sequence was freed."""


class BusyError(InferenceError):
    """Every slot is busy and the engine's queue is full."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Slot:
    """One sequence id; ``tokens`` are in its KV cells, ``text``/``history`` is the conversation."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    history: list[int] = field(default_factory=list)
    last_used: float = 0.0
    busy: bool = False

    def forget(self) -> None:
        """Drop the kept conversation (the caller clears the KV cells)."""
        self.tokens, self.text, self.history = [], "", []


@dataclass
class SequenceRequest:
    """One generation asked of the engine: its prompt, bounds, stream and outcome."""

    text: str
    max_tokens: int
    temperature: float
    stops: tuple[str, ...]
    on_token: Callable[[str], None] | None
    seed: int = 0
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None
    error: InferenceError | None = None

    def cancel(self) -> None:
        """Ask the engine to stop this sequence and free its slot at the next step."""
        self.cancelled.set()


class ActiveSequence:
    """A request placed in a slot: prompt left to evaluate, tokens generated, timings."""

    def __init__(
        self, request: SequenceRequest, slot: Slot, prompt: list[int], keep: int, sampler: object
    ) -> None:
        self.request, self.slot, self.sampler = request, slot, sampler
        self.prompt = prompt
        self.pending = prompt[keep:]  # prompt tokens still to evaluate (keep are in the KV)
        self.evaluated = len(self.pending)
        self.out_tokens: list[int] = []
        self.next_token: int | None = None  # sampled, not yet in the KV
        self.raw_text = ""
        self.eog_token: int | None = None
        self.finish = "length"
        self.scanner = StopScanner(request.stops)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.prefill_done_at: float | None = None

    @property
    def position(self) -> int:
        """Tokens of this sequence in the KV cells."""
        return len(self.slot.tokens)

    def take_prompt(self, budget: int) -> list[int]:
        """The next chunk of at most ``budget`` prompt tokens to evaluate."""
        chunk, self.pending = self.pending[:budget], self.pending[budget:]
        return chunk

    def accept(self, token: int, piece: bytes, is_eog: bool) -> bool:
        """Take one sampled token; True when the sequence is finished."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if is_eog:
            self.eog_token, self.finish = token, "stop"
            return True
        self.out_tokens.append(token)
        if self._push(self.decoder.decode(piece)):
            self.finish = "stop"
            return True
        if len(self.out_tokens) >= self.request.max_tokens:
            return True
        self.next_token = token
        return False

    def _push(self, piece: str, *, final: bool = False) -> bool:
        self.raw_text += piece
        emitted, hit = self.scanner.feed(piece, final=final)
        if emitted and self.request.on_token is not None:
            self.request.on_token(emitted)
        return hit

    def finish_generation(self, eog_text: str) -> Generation:
        """Flush the stream, remember the conversation in the slot, and return the result."""
        if not self.scanner.hit:
            try:
                self._push(self.decoder.decode(b"", final=True), final=True)
            except Exception:  # noqa: BLE001 - the consumer left at the very end; the result stands
                pass
        slot, now = self.slot, time.perf_counter()
        if self.scanner.hit:  # the cut text is not the conversation; keep the prompt only
            slot.text, slot.history = self.request.text, list(self.prompt)
        else:
            eog = [self.eog_token] if self.eog_token is not None else []
            slot.text = self.request.text + self.raw_text + (eog_text if eog else "")
            slot.history = self.prompt + self.out_tokens + eog
        slot.last_used = now
        first = self.first_token_at or now
        started = self.request.submitted
        return Generation(
            text=self.scanner.text,
            finish_reason=self.finish,
            prompt_tokens=len(self.prompt),
            prompt_tokens_evaluated=self.evaluated,
            generated_tokens=len(self.out_tokens),
            prefill_s=(self.prefill_done_at or first) - self.started,
            ttft_s=first - started,
            decode_s=max(0.0, now - first),
            total_s=now - started,
        )


def pick_slot(
    slots: Sequence[Slot], text: str, tokens: Sequence[int], *, share_prefix: bool = False
) -> Slot | None:
    """The idle slot to run a prompt in, or None when every slot is busy.

    First the slot holding the longest conversation the prompt extends (its
    text is a prefix of the prompt); else one whose cells mostly match the
    prompt's tokens (an edited last turn); else, with ``share_prefix`` (the
    conversation in it will be stored, not lost), one sharing at least
    :data:`SHARED_PREFIX_TOKENS` with the prompt, such as the same system prompt,
    so a new conversation skips evaluating it; else the least recently used, so a
    kept conversation is given up only when no empty or older slot is left.
    """
    idle = [s for s in slots if not s.busy]
    if not idle:
        return None
    extending = [s for s in idle if s.text and text.startswith(s.text)]
    if extending:
        return max(extending, key=lambda s: len(s.text))
    best = max(idle, key=lambda s: (common_prefix(s.tokens, tokens), -s.last_used))
    shared = common_prefix(best.tokens, tokens)
    if best.tokens and 2 * shared > len(best.tokens):
        return best
    if share_prefix and shared >= SHARED_PREFIX_TOKENS:
        return best
    return min(idle, key=lambda s: s.last_used)
