"""Conversations beyond the engine's N sequences: stored out of the cells, copied back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.inference.batch import BatchEngine
from agent.inference.conversations import (
    ConversationStore,
    StoredConversation,
    store_budget_bytes,
)
from shared.gguf_info import MB, estimate_memory, read_gguf_info
from shared.profiles import DeviceProfile
from tests.factories.planner import load_profiles

TOKENS = 24
OPENERS = ("What is the capital of France?", "Name three primary colours.")


def _stored(text: str, state_bytes: int) -> StoredConversation:
    return StoredConversation(text, [1, 2], [1, 2, 3], b"x" * state_bytes)


def test_the_store_drops_the_least_recent_conversation_to_stay_in_bounds() -> None:
    size = _stored("a", 100).size
    store = ConversationStore(max_bytes=2 * size + 10)
    for text in ("a", "b", "c"):
        assert store.put(_stored(text, 100))
    assert len(store) == 2 and store.bytes <= store.max_bytes
    assert store.take("a and more") is None  # the oldest went
    assert store.take("c, continued") is not None
    assert len(store) == 1  # taking moves it out (into a slot)


def test_the_store_gives_the_longest_conversation_a_prompt_extends() -> None:
    store = ConversationStore(max_bytes=10_000)
    store.put(_stored("user: hi", 10))
    store.put(_stored("user: hi\nassistant: hello\nuser: and?", 10))
    store.put(_stored("user: other", 10))
    taken = store.take("user: hi\nassistant: hello\nuser: and?\nassistant: so\nuser: more")
    assert taken is not None and taken.text.endswith("and?")
    assert store.take("user: nothing stored") is None


def test_a_conversation_larger_than_the_store_is_not_kept() -> None:
    store = ConversationStore(max_bytes=50)
    assert not store.put(_stored("a", 100))
    assert len(store) == 0 and store.bytes == 0


def test_storing_the_same_conversation_again_replaces_it() -> None:
    store = ConversationStore(max_bytes=10_000)
    store.put(_stored("a", 10))
    store.put(_stored("a", 20))
    assert len(store) == 1 and store.bytes == _stored("a", 20).size


def _profile(**extra: object) -> DeviceProfile:
    base = load_profiles()["dev-x86-1core"]
    return base.model_copy(update={"memory_budget_mb": 1000, "n_ctx": 1024} | extra)


def test_the_store_takes_half_of_what_the_budget_leaves_unless_set(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    need = estimate_memory(info, n_ctx=1024, kv_cache_type="f16", parallel=2).total
    derived = store_budget_bytes(info, _profile(), n_ctx=1024, parallel=2)
    assert derived == (1000 * MB - need) // 2
    assert need + derived <= 1000 * MB  # the planner's memory filter stays true
    set_mb = _profile(conversation_store_mb=7)
    assert store_budget_bytes(info, set_mb, n_ctx=1024, parallel=2) == 7 * MB
    assert store_budget_bytes(info, None, n_ctx=1024, parallel=2) == 0
    tight = _profile(memory_budget_mb=100)
    assert store_budget_bytes(info, tight, n_ctx=1024, parallel=2) == 0


def _turns(engine: BatchEngine) -> tuple[list[dict[str, str]], int]:
    """Opens both conversations (the second takes the only slot), then asks the first's
    second turn; returns that turn's messages and the tokens it evaluated."""
    first = [{"role": "user", "content": OPENERS[0]}]
    answer = engine.chat(first, max_tokens=TOKENS)
    engine.chat([{"role": "user", "content": OPENERS[1]}], max_tokens=TOKENS)
    first += [
        {"role": "assistant", "content": answer.text},
        {"role": "user", "content": "And of Germany?"},
    ]
    second = engine.chat(first, max_tokens=TOKENS)
    return first + [{"role": "assistant", "content": second.text}], second.prompt_tokens_evaluated


@pytest.fixture(scope="module")
def one_slot(smollm2_path: Path) -> Iterator[BatchEngine]:
    engine = BatchEngine(smollm2_path, parallel=1, threads=1, n_ctx=1024, store_bytes=64 * MB)
    yield engine
    engine.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_conversation_pushed_out_of_its_slot_comes_back_without_re_evaluation(
    one_slot: BatchEngine, smollm2_path: Path
) -> None:
    one_slot.reset()
    restored_before = one_slot.restored_conversations
    with_store, evaluated = _turns(one_slot)
    assert one_slot.restored_conversations == restored_before + 1
    assert evaluated < 30  # "And of Germany?" and the template's markers, not the history
    # the same conversations with a slot each: the second turn found its cells in place,
    # and must read exactly as the one whose cells went out to the store and came back
    two_slots = BatchEngine(smollm2_path, parallel=2, threads=1, n_ctx=1024, store_bytes=0)
    try:
        in_place, evaluated_in_place = _turns(two_slots)
    finally:
        two_slots.close()
    assert evaluated == evaluated_in_place
    assert with_store == in_place


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_without_room_in_the_store_the_history_is_evaluated_again(smollm2_path: Path) -> None:
    engine = BatchEngine(smollm2_path, parallel=1, threads=1, n_ctx=1024, store_bytes=1000)
    try:
        _, evaluated = _turns(engine)
    finally:
        engine.close()
    assert engine.restored_conversations == 0
    assert evaluated > 40  # the whole first turn again


SYSTEM = {"role": "system", "content": "You help a rural school. Answer briefly and plainly."}


@pytest.mark.parametrize("store_bytes", [64 * MB, 0])
def test_a_new_conversation_finds_the_system_prompt_in_a_kept_ones_slot(
    tiny_gguf: Path, store_bytes: int
) -> None:
    engine = BatchEngine(tiny_gguf, parallel=4, n_ctx=512, store_bytes=store_bytes)
    try:
        first = [SYSTEM, {"role": "user", "content": "what is water"}]
        answer = engine.chat(first, max_tokens=160)  # a long answer: the shared part is short
        second = engine.chat(
            [SYSTEM, {"role": "user", "content": "why is the sky blue"}], max_tokens=4
        )
        if not store_bytes:  # nowhere to keep the first conversation: an empty slot it is
            assert second.prompt_tokens_evaluated == second.prompt_tokens
            return
        assert second.prompt_tokens_evaluated < second.prompt_tokens / 2
        assert len(engine.stored) == 1  # the first conversation, out of the slot it gave up
        follow_up = [*first, {"role": "assistant", "content": answer.text}]
        follow_up.append({"role": "user", "content": "and ice"})
        third = engine.chat(follow_up, max_tokens=4)
    finally:
        engine.close()
    assert engine.restored_conversations == 1
    assert third.prompt_tokens_evaluated < third.prompt_tokens / 2
