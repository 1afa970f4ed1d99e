"""Conversation affinity: a turn is recognised by the history it continues, per client key."""

from __future__ import annotations

from typing import Any

from controller.gateway.affinity import Affinity, answered_key, continued_key
from shared.chat import ChatMessage


def _messages(*turns: tuple[str, Any]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in turns]


FIRST = _messages(("system", "Be brief."), ("user", "Hi"))
ANSWER = " Hello! How can I help?"


def test_the_next_turn_continues_the_history_the_answer_closed() -> None:
    remembered = answered_key(7, FIRST, ANSWER)
    second = [*FIRST, *_messages(("assistant", ANSWER.strip()), ("user", "Dosage?"))]
    assert continued_key(7, second) == remembered  # the client trimmed the answer: same
    # content parts and "developer" are what the device reads too: the same history
    as_parts = _messages(
        ("developer", [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]),
        ("user", "Hi"),
        ("assistant", ANSWER),
        ("user", "Dosage?"),
    )
    assert continued_key(7, as_parts) == remembered


def test_a_first_turn_continues_nothing_even_after_a_system_prompt() -> None:
    assert continued_key(7, FIRST) is None
    assert continued_key(7, _messages(("user", "a"), ("user", "b"))) is None


def test_another_key_another_answer_or_an_edited_turn_is_another_conversation() -> None:
    second = [*FIRST, *_messages(("assistant", ANSWER), ("user", "Dosage?"))]
    assert continued_key(8, second) != answered_key(7, FIRST, ANSWER)
    assert continued_key(7, second) != answered_key(7, FIRST, "Hello.")
    edited = [*_messages(("system", "Be brief."), ("user", "Hey")), *second[2:]]
    assert continued_key(7, edited) != answered_key(7, FIRST, ANSWER)


def test_the_least_recently_used_conversation_is_forgotten_first() -> None:
    affinity = Affinity(capacity=2)
    for name, device in [(b"a", "pi-1"), (b"b", "pi-2")]:
        affinity.remember(name, device)
    assert affinity.device_for(b"a") == "pi-1"  # used: b is now the oldest
    affinity.remember(b"c", "pi-3")
    assert len(affinity) == 2 and affinity.device_for(b"b") is None
    assert affinity.device_for(b"a") == "pi-1" and affinity.device_for(b"c") == "pi-3"
    affinity.remember(b"a", "pi-2")  # a later turn answered elsewhere: the newest wins
    assert affinity.device_for(b"a") == "pi-2"


def test_capacity_zero_turns_it_off() -> None:
    affinity = Affinity(capacity=0)
    affinity.remember(b"a", "pi-1")
    assert len(affinity) == 0 and affinity.device_for(b"a") is None
