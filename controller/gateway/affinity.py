"""Which device answered a conversation's previous turn, so its next turn can go there too.

A device keeps a conversation's KV prefix in a slot; its next turn costs there a fraction
of re-reading the whole conversation elsewhere. Clients send no conversation id, so a
turn is recognised by its history: the key after an answer covers the messages sent plus
that answer, and the next turn's messages before its last user message are exactly those
(as OpenAI clients send them back). Keys are per client key, kept in a bounded LRU in this
process; a lost entry (evicted, restart) only costs one re-prefill.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence

from shared.chat import ChatMessage

ConversationKey = bytes


def _key(client: object, turns: Sequence[dict[str, str]]) -> ConversationKey:
    """A digest of the client and the turns (content stripped: clients trim answers)."""
    canonical = [[t["role"], t["content"].strip()] for t in turns]
    return hashlib.sha256(json.dumps([str(client), canonical]).encode()).digest()


def continued_key(client: object, messages: Sequence[ChatMessage]) -> ConversationKey | None:
    """The key of the history this request continues; None for a conversation's first turn."""
    turns = [m.as_dict() for m in messages]
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    history = turns[: users[-1]] if users else turns
    if not any(t["role"] == "assistant" for t in history):
        return None
    return _key(client, history)


def answered_key(client: object, messages: Sequence[ChatMessage], answer: str) -> ConversationKey:
    """The key of the history after ``answer``: what the conversation's next turn continues."""
    turns = [m.as_dict() for m in messages]
    return _key(client, [*turns, {"role": "assistant", "content": answer}])


class Affinity:
    """Conversation key -> the device that answered it, the ``capacity`` most recent (0: off)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._devices: OrderedDict[ConversationKey, str] = OrderedDict()

    def device_for(self, key: ConversationKey) -> str | None:
        """The device that answered the history ``key`` names, if still remembered."""
        device_id = self._devices.get(key)
        if device_id is not None:
            self._devices.move_to_end(key)
        return device_id

    def remember(self, key: ConversationKey, device_id: str) -> None:
        """Note who answered; the least recently used entry goes when over capacity."""
        if self.capacity == 0:
            return
        self._devices[key] = device_id
        self._devices.move_to_end(key)
        while len(self._devices) > self.capacity:
            self._devices.popitem(last=False)

    def __len__(self) -> int:
        return len(self._devices)
