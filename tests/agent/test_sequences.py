"""Which slot a prompt runs in: the conversation it extends, a near match, else the oldest."""

from agent.inference.sequences import SHARED_PREFIX_TOKENS, Slot, common_prefix, pick_slot


def _slot(seq_id: int, text: str = "", tokens: list[int] | None = None, used: float = 0.0) -> Slot:
    return Slot(seq_id, tokens=tokens or [], text=text, last_used=used)


def test_a_prompt_goes_to_the_longest_conversation_it_extends() -> None:
    slots = [
        _slot(0, "ab", [1, 2], 5.0),
        _slot(1, "abcd", [1, 2, 3, 4], 1.0),
        _slot(2, "", [], 0.0),
    ]
    assert pick_slot(slots, "abcdef", [1, 2, 3, 4, 5, 6]).seq_id == 1


def test_an_edited_last_turn_reuses_the_mostly_matching_slot() -> None:
    slots = [_slot(0, "x", [1, 2, 3, 4], 9.0), _slot(1, "", [], 0.0)]
    assert pick_slot(slots, "y", [1, 2, 3, 9]).seq_id == 0  # 3 of its 4 cells match


def test_otherwise_the_least_recently_used_idle_slot_is_given_up() -> None:
    slots = [_slot(0, "old", [7, 7], 1.0), _slot(1, "new", [8, 8], 2.0)]
    busy = _slot(2, "", [], 0.0)
    busy.busy = True
    assert pick_slot([*slots, busy], "other", [1, 2]).seq_id == 0
    for slot in slots:
        slot.busy = True
    assert pick_slot([*slots, busy], "other", [1, 2]) is None


def test_common_prefix_counts_matching_leading_tokens() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0


def test_with_the_store_on_a_shared_system_prompt_beats_an_empty_slot() -> None:
    system = list(range(100, 100 + SHARED_PREFIX_TOKENS))
    kept = _slot(
        0, "conversation", [*system, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], 5.0
    )
    slots = [kept, _slot(1, "", [], 0.0)]
    prompt = [*system, 50, 51]
    assert pick_slot(slots, "new", prompt, share_prefix=True).seq_id == 0
    # without the store the kept conversation would be lost: the empty slot is taken
    assert pick_slot(slots, "new", prompt).seq_id == 1
    # too little in common to be worth storing the conversation
    short = [*system[: SHARED_PREFIX_TOKENS - 1], 50, 51]
    assert pick_slot(slots, "new", short, share_prefix=True).seq_id == 1


def test_among_slots_sharing_as_much_the_least_recently_used_is_taken() -> None:
    system = list(range(100, 100 + SHARED_PREFIX_TOKENS))
    tail = list(range(40))
    slots = [_slot(0, "a", [*system, *tail], 9.0), _slot(1, "b", [*system, *tail[::-1]], 2.0)]
    assert pick_slot(slots, "new", [*system, 7], share_prefix=True).seq_id == 1
