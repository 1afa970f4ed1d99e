"""Conversations moved out of the KV cells into host memory, so a box keeps more than N.

A slot's cells hold one conversation. When another conversation needs the slot, the
engine copies the old one's cells out (llama.cpp's per-sequence state) into this store,
bounded in bytes, least recently used dropped first; a later turn of it is copied back
into a slot, so only the turn's new tokens are evaluated. Copying back is a memory copy
where re-evaluating the history is a prefill, the slow part on a Pi.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shared.gguf_info import MB, GgufInfo, estimate_memory
from shared.profiles import DeviceProfile


@dataclass(frozen=True)
class StoredConversation:
    """One conversation out of the cells: its text, its tokens and the copied state."""

    text: str
    history: list[int]
    tokens: list[int]
    state: bytes

    @property
    def size(self) -> int:
        """Bytes it holds: the state, plus the two token lists (8 bytes a token, roughly)."""
        return len(self.state) + 8 * (len(self.history) + len(self.tokens)) + len(self.text)


class ConversationStore:
    """Stored conversations by text, at most ``max_bytes`` together, least recent out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[str, StoredConversation] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    def put(self, conversation: StoredConversation) -> bool:
        """Keep ``conversation`` (replacing one with the same text); False if it cannot fit."""
        self._drop(conversation.text)
        if conversation.size > self.max_bytes:
            return False
        while self.bytes + conversation.size > self.max_bytes:
            self._drop(next(iter(self._kept)))
        self._kept[conversation.text] = conversation
        self.bytes += conversation.size
        return True

    def take(self, prompt: str) -> StoredConversation | None:
        """Remove and return the longest stored conversation ``prompt`` extends, if any."""
        extended = [text for text in self._kept if prompt.startswith(text)]
        if not extended:
            return None
        text = max(extended, key=len)
        conversation = self._kept[text]
        self._drop(text)
        return conversation

    def clear(self) -> None:
        """Forget every stored conversation."""
        self._kept.clear()
        self.bytes = 0

    def _drop(self, text: str) -> None:
        dropped = self._kept.pop(text, None)
        if dropped is not None:
            self.bytes -= dropped.size


def store_budget_bytes(
    info: GgufInfo, profile: DeviceProfile | None, *, n_ctx: int, parallel: int
) -> int:
    """Bytes the store may hold: the profile's setting, else half of what the budget leaves.

    What the budget leaves is the class's memory budget minus the estimate for the
    model with its ``parallel`` sequences, so the planner's memory filter (which checks
    that estimate against the budget) stays true with the store full. No profile: 0.
    """
    if profile is None:
        return 0
    if profile.conversation_store_mb is not None:
        return profile.conversation_store_mb * MB
    need = estimate_memory(
        info, n_ctx=n_ctx, kv_cache_type=profile.kv_cache_type, parallel=parallel
    )
    return max(0, int((profile.memory_budget_mb * MB - need.total) / 2))
