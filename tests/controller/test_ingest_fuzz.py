"""Hypothesis fuzz of MQTT payloads through Mosquitto into ingest: no crash, counts add up."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from controller.models import DeadLetter, IngestedMessage
from shared.messages import encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES
from tests.support.broker import MosquittoBroker

KINDS = [k for k in TopicKind if k.ingested]
_seq = itertools.count(1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[TopicKind, bytes]:
    """Valid envelopes, valid ones with a field mutated, arbitrary JSON and raw bytes."""
    kind = draw(st.sampled_from(KINDS))
    choice = draw(st.integers(0, 3))
    if choice == 3:
        return kind, draw(st.binary(max_size=300))
    if choice == 2:
        return kind, json.dumps(draw(json_values)).encode()
    envelope = json.loads(encode(make_envelope("pi-fuzz", next(_seq), EXAMPLE_BODIES[kind])))
    if choice == 1:
        target = envelope if draw(st.booleans()) else envelope["body"]
        target[draw(st.sampled_from(sorted(target)))] = draw(json_values)
    return draw(st.sampled_from(KINDS)) if draw(st.booleans()) else kind, json.dumps(
        envelope
    ).encode()


@pytest.fixture(scope="module")
def fuzz_rig(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoBroker
) -> Iterator[tuple[Engine, IngestService, FakeDevice]]:
    from controller.core.db import create_db_engine, migrate

    engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'c.db'}")
    migrate(engine)
    service = IngestService(
        engine,
        MqttOptions(host="127.0.0.1", port=mosquitto.port, client_id="fuzz-ctl"),
        topics=Topics(),
        config=IngestConfig(flush_interval_s=0.02),
    ).start()
    assert service.connection.wait_connected(10)
    device = FakeDevice("pi-fuzz", mosquitto.port)
    yield engine, service, device
    device.close()
    service.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(payloads(), min_size=1, max_size=15))
def test_fuzzed_payloads_are_stored_or_dead_lettered(
    fuzz_rig: tuple[Engine, IngestService, FakeDevice], batch: list[tuple[TopicKind, bytes]]
) -> None:
    engine, service, device = fuzz_rig
    before = service.stats.handled
    for kind, payload in batch:
        device.publish_raw(kind, payload).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= before + len(batch))
    assert service.stats.handled == before + len(batch)
    assert service.connection.callback_errors == 0
    with engine.connect() as conn:
        ledger = conn.execute(select(func.count()).select_from(IngestedMessage)).scalar_one()
        dead = conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
    # every message sent is stored, a duplicate or a dead letter, and the database agrees
    stats = service.stats
    assert stats.stored + stats.duplicates + dead == stats.received
    assert dead == sum(stats.dead_letters.values())
    # a bench run refused as already stored keeps its ledger entry (its seq was used)
    assert ledger == stats.stored + stats.dead_letters["duplicate_run"]
