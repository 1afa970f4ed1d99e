"""The on-disk outbox: order, persistence, bound and drop policy, seq across restarts,
end-to-end confirmation and a full disk."""

from __future__ import annotations

import resource
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.link.outbox import Outbox, OutboxFull
from shared.topics import TopicKind


def test_rows_survive_reopening_and_come_back_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    ids = [box.put(TopicKind.METRICS, "t", f"m{i}".encode()) for i in range(5)]
    box.delete(ids[1])
    box.close()
    again = Outbox(tmp_path / "a.db")
    assert [r.payload for r in again.pending()] == [b"m0", b"m2", b"m3", b"m4"]
    assert [r.payload for r in again.pending(skip={ids[0], ids[2]}, limit=1)] == [b"m3"]
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


def _queue(box: Outbox, count: int) -> list[tuple[int, int]]:
    """(row id, seq) of ``count`` new metrics rows."""
    return [
        box.put_sequenced(TopicKind.METRICS, "t", lambda seq: b"m%d" % seq) for _ in range(count)
    ]


def test_a_puback_keeps_the_row_until_the_controller_confirms_its_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    rows = _queue(box, 5)
    for row_id, _seq in rows[:4]:
        box.published(row_id)
    assert (box.depth(), box.unconfirmed()) == (1, 4)  # one never published, four at the broker
    assert [r.id for r in box.pending()] == [rows[4][0]]  # published rows are not sent again
    assert box.confirm([(rows[0][1], rows[1][1])]) == 2
    assert box.unconfirmed() == 2
    assert box.republish_all() == 2  # a reconnect: what the broker may have lost goes again
    assert [r.id for r in box.pending()] == [rows[2][0], rows[3][0], rows[4][0]]


def test_only_overtaken_rows_are_republished_after_the_timeout(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "a.db")
    rows = _queue(box, 3)
    for row_id, _seq in rows:
        box.published(row_id)
    now = time.time()
    assert box.republish_stale(published_before=now - 30, below_seq=rows[2][1]) == 0  # too new
    assert box.republish_stale(published_before=now + 1, below_seq=rows[2][1]) == 2
    assert [r.id for r in box.pending()] == [rows[0][0], rows[1][0]]


def test_unconfirmed_rows_are_bounded_oldest_first(tmp_path: Path) -> None:
    """A controller that never confirms: the window stays bounded; unsent rows are untouched."""
    box = Outbox(tmp_path / "a.db", max_messages=10, max_unconfirmed=3)
    rows = _queue(box, 8)
    for row_id, _seq in rows[:6]:
        box.published(row_id)
    assert box.enforce_unconfirmed_bound() == 3
    assert (box.unconfirmed(), box.depth(), box.released) == (3, 2, 3)
    _queue(box, 6)  # 5 + 6 > 10: published rows go before any unsent one
    assert box.unconfirmed() == 2
    assert box.depth() == 8 and not box.dropped


def test_an_outbox_from_an_older_agent_is_migrated_and_its_rows_end_at_the_puback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, created_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO outbox VALUES (1, 'metrics', 't', x'00', 0)")
    box = Outbox(path)
    assert [r.id for r in box.pending()] == [1]
    box.published(1)
    assert (box.depth(), box.unconfirmed()) == (0, 0)  # no seq to confirm: the PUBACK ends it


def test_a_full_disk_refuses_new_messages_clearly_and_keeps_the_queued_ones(
    tmp_path: Path,
) -> None:
    """The file-size limit (RLIMIT_FSIZE) stands in for a full disk here; the reliability
    test uses a size-limited tmpfs."""
    box = Outbox(tmp_path / "a.db")
    queued = _queue(box, 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    size = max(p.stat().st_size for p in tmp_path.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        with pytest.raises(OutboxFull, match="free disk space"):
            for _ in range(10_000):
                box.put_sequenced(TopicKind.METRICS, "t", lambda _seq: b"x" * 4096)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    kept = {r.id for r in box.pending(limit=100_000)}
    assert {row_id for row_id, _seq in queued} <= kept
    assert box.put_sequenced(TopicKind.METRICS, "t", lambda _seq: b"after")[0] > 0
