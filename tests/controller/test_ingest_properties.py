"""Property: however messages are redelivered, reordered and batched, each is stored once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from controller.core.db import create_db_engine, migrate
from controller.ingest.mqtt import Received
from controller.ingest.store import IngestStore
from controller.models import Heartbeat, ServingMetric
from shared.messages import HeartbeatBody, MetricsBody, encode, make_envelope
from shared.topics import Topics

_run = itertools.count()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestStore]:
    path: Path = tmp_path_factory.mktemp("prop") / "c.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate(engine)
    yield IngestStore(engine, topics=Topics())
    engine.dispose()


def _messages(device_id: str, count: int) -> list[Received]:
    out = []
    for seq in range(1, count + 1):
        body = (
            HeartbeatBody(uptime_s=seq, load_1m=0, mem_available_mb=1)
            if seq % 2
            else MetricsBody(window_s=1, requests=seq)
        )
        envelope = make_envelope(device_id, seq, body, sent_at=T0 + timedelta(seconds=seq))
        topic = Topics().device(device_id, envelope.kind)
        out.append(Received(topic, encode(envelope), seq, 1, False, T0))
    return out


def _count(engine: Engine, device_id: str) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(
                select(func.count()).select_from(t).where(t.c.device_id == device_id)
            ).scalar_one()
            for t in (Heartbeat.__table__, ServingMetric.__table__)  # type: ignore[attr-defined]
        )


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 12),
    data=st.data(),
)
def test_any_redelivery_schedule_stores_each_message_once(
    store: IngestStore, count: int, data: st.DataObject
) -> None:
    device_id = f"prop-{next(_run)}"
    messages = _messages(device_id, count)
    # every message at least once, some several times, in any order
    extra = data.draw(st.lists(st.sampled_from(messages), max_size=2 * count))
    deliveries = data.draw(st.permutations(messages + extra))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(deliveries) - 1)), max_size=4)))
    batches = [deliveries[a:b] for a, b in itertools.pairwise([0, *cuts, len(deliveries)])]
    stored = duplicates = 0
    for batch in batches:
        if batch:
            outcome = store.write(batch)
            assert not outcome.dead
            stored += outcome.stored
            duplicates += outcome.duplicates
    assert stored == count
    assert duplicates == len(deliveries) - count
    assert _count(store.engine, device_id) == count
