"""Ingest bounds (finding 5): dead-letter retention with exact counters, body strings,
``sent_at`` skew. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from controller import crud
from controller.ingest.mqtt import Received
from controller.ingest.store import IngestStore
from controller.models import DeadLetter, Device
from shared.messages import Body, HeartbeatBody, encode, make_envelope
from shared.topics import Topics
from tests.factories.messages import EXAMPLE_BODIES

NOW = datetime.now(UTC)


def _received(device_id: str, seq: int, body: Body, *, sent_at: datetime = NOW) -> Received:
    envelope = make_envelope(device_id, seq, body, sent_at=sent_at)
    topic = Topics().device(device_id, envelope.kind)
    return Received(topic, encode(envelope), mid=seq, qos=1, retain=False, received_at=NOW)


def _raw(device_id: str, seq: int, payload: bytes) -> Received:
    topic = Topics().device(device_id, "heartbeat")
    return Received(topic, payload, mid=seq, qos=1, retain=False, received_at=NOW)


def test_dead_letters_stay_within_rows_and_bytes_and_counters_stay_exact(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics(), keep_payload_bytes=4096)
    garbage = [_raw("pi-g", seq, b"\xff" * 100_000) for seq in range(1, 1001)]
    for start in range(0, 1000, 100):
        assert dict(store.write(garbage[start : start + 100]).dead) == {"bad_json": 100}
        store.prune_dead_letters(max_rows=150, max_bytes=400_000)
    with Session(engine) as session:
        kept = session.scalar(select(func.count()).select_from(DeadLetter))
        kept_bytes = session.scalar(select(func.sum(func.length(DeadLetter.payload))))
        oldest, newest = session.execute(
            select(func.min(DeadLetter.id), func.max(DeadLetter.id))
        ).one()
        assert crud.dead_letter_counts(session) == {"bad_json": 1000}
    assert kept == 400_000 // 4096 and kept_bytes <= 400_000  # the byte bound binds first
    assert newest - oldest + 1 == kept  # the newest ones were kept


def test_a_hello_with_huge_strings_is_refused_and_long_free_text_is_cut(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    hello = json.loads(encode(make_envelope("pi-h", 1, EXAMPLE_BODIES["hello"])))
    hello["body"]["agent_version"] = "v" * 500_000
    refused = _raw("pi-h", 1, json.dumps(hello).encode())
    refused = Received(Topics().device("pi-h", "hello"), refused.payload, 1, 1, False, NOW)
    hardware = EXAMPLE_BODIES["hello"].hardware.model_copy(update={"cpu_model": "c" * 5000})
    long_cpu = EXAMPLE_BODIES["hello"].model_copy(update={"hardware": hardware})
    outcome = store.write([refused, _received("pi-h", 2, long_cpu)])
    assert (outcome.stored, dict(outcome.dead)) == (1, {"bad_schema": 1})
    with Session(engine) as session:
        device = session.get(Device, "pi-h")
        assert device is not None and device.cpu_model is not None
        assert len(device.cpu_model) == 256 and (device.agent_version or "") != "v" * 500_000


def test_a_sent_at_far_in_the_future_does_not_pin_the_device(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics(), max_future_skew=timedelta(hours=1))
    body = HeartbeatBody(uptime_s=1, load_1m=0, mem_available_mb=1)
    year_9999 = datetime(9999, 1, 1, tzinfo=UTC)
    outcome = store.write([_received("pi-t", 1, body, sent_at=year_9999)])
    assert (outcome.stored, dict(outcome.dead)) == (0, {"clock_skew": 1})
    assert store.write([_received("pi-t", 2, body)]).stored == 1
    with Session(engine) as session:
        device = session.get(Device, "pi-t")
        assert device is not None and device.last_heartbeat_at is not None
        assert device.last_heartbeat_at.year == NOW.year
