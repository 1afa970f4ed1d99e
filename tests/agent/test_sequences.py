"""Which slot a prompt runs in: the conversation it extends, a near match, else the oldest."""

from agent.inference.sequences import Slot, common_prefix, pick_slot


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
