"""The on-disk outbox: order, persistence, bound and drop policy, seq across restarts."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.link.outbox import Outbox
from shared.topics import TopicKind


def test_rows_survive_reopening_and_come_back_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    ids = [box.put(TopicKind.METRICS, "t", f"m{i}".encode()) for i in range(5)]
    box.delete(ids[1])
    box.close()
    again = Outbox(tmp_path / "a.db")
    assert [r.payload for r in again.pending()] == [b"m0", b"m2", b"m3", b"m4"]
    assert [r.payload for r in again.pending(after_id=ids[2], limit=1)] == [b"m3"]
    assert again.depth() == 4


def test_seq_keeps_rising_across_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    first = [box.next_seq() for _ in range(3)]
    box.close()
    again = Outbox(tmp_path / "a.db")
    assert first == [0, 1, 2]
    assert again.next_seq() == 3


def test_full_outbox_drops_oldest_heartbeats_first_and_never_bench(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db", max_messages=4)
    box.put(TopicKind.BENCH, "t", b"bench0")
    box.put(TopicKind.HEARTBEAT, "t", b"hb0")
    box.put(TopicKind.METRICS, "t", b"m0")
    box.put(TopicKind.HEARTBEAT, "t", b"hb1")
    box.put(TopicKind.METRICS, "t", b"m1")  # full: hb0 goes
    assert [r.payload for r in box.pending()] == [b"bench0", b"m0", b"hb1", b"m1"]
    box.put(TopicKind.BENCH, "t", b"bench1")  # hb1 goes
    box.put(TopicKind.BENCH, "t", b"bench2")  # no heartbeat left: oldest metrics m0
    assert [r.payload for r in box.pending()] == [b"bench0", b"m1", b"bench1", b"bench2"]
    box.put(TopicKind.BENCH, "t", b"bench3")  # m1
    box.put(TopicKind.BENCH, "t", b"bench4")  # only bench left: the bound gives way
    assert [r.payload for r in box.pending()] == [f"bench{i}".encode() for i in range(5)]
    assert box.dropped == {"heartbeat": 2, "metrics": 2}


def test_command_log_remembers_outcomes_and_stays_bounded(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db", keep_commands=3)
    box.record_command("c1", "accepted")
    box.record_command("c1", "error", "sha256 mismatch", {"x": 1})
    record = box.command("c1")
    assert record is not None and record.status == "error" and record.detail == {"x": 1}
    for i in range(2, 6):
        box.record_command(f"c{i}", "ok")
    assert box.command("c1") is None and box.command("c5") is not None


KINDS = [TopicKind.HEARTBEAT, TopicKind.METRICS, TopicKind.ACK, TopicKind.BENCH]


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), max_size=40),
    bound=st.integers(min_value=1, max_value=12),
)
def test_drop_policy_invariants(tmp_path_factory, kinds, bound) -> None:
    box = Outbox(tmp_path_factory.mktemp("prop") / "a.db", max_messages=bound)
    for index, kind in enumerate(kinds):
        box.put(kind, "t", f"{kind.value}-{index}".encode())
    rows = box.pending(limit=1000)
    kept = [r.payload.decode() for r in rows]
    benches = [f"bench-{i}" for i, k in enumerate(kinds) if k is TopicKind.BENCH]
    assert [p for p in kept if p.startswith("bench")] == benches  # never dropped
    assert len(rows) <= max(bound, len(benches))  # bounded, exceeded only by bench rows
    assert [r.id for r in rows] == sorted(r.id for r in rows)  # order kept
    order = {p: i for i, p in enumerate(f"{k.value}-{i}" for i, k in enumerate(kinds))}
    assert [order[p] for p in kept] == sorted(order[p] for p in kept)
    if box.dropped.get("metrics"):  # heartbeats go first: none is left once metrics go
        assert not any(p.startswith("heartbeat") for p in kept)
    if box.dropped.get("ack"):
        assert not any(p.startswith(("heartbeat", "metrics")) for p in kept)
    box.close()
