"""The embedded amqtt broker: real paho clients (MQTT 3.1.1) through it into ingest."""

from __future__ import annotations

from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine

from controller.broker.embedded import EmbeddedBroker
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES
from tests.support.ports import free_port


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port()).start()
    yield broker
    broker.stop()


def test_embedded_broker_carries_every_kind_into_the_database(
    embedded: EmbeddedBroker, sqlite_engine: Engine
) -> None:
    service = IngestService(
        sqlite_engine,
        MqttOptions(host="127.0.0.1", port=embedded.port, protocol="3.1.1", client_id="emb"),
        topics=Topics(),
        config=IngestConfig(flush_interval_s=0.05),
    ).start()
    try:
        assert service.connection.wait_connected(10)
        device = FakeDevice("pi-emb", embedded.port, protocol=mqtt.MQTTv311)
        kinds = [k for k in TopicKind if k.from_agent]
        for kind in kinds:
            device.publish_body(EXAMPLE_BODIES[kind]).wait_for_publish(5)
        assert wait_until(lambda: service.stats.handled >= len(kinds))
        device.close()
        assert service.stats.stored == len(kinds)
    finally:
        service.stop()


def test_embedded_broker_refuses_mqtt5_clients(embedded: EmbeddedBroker) -> None:
    # amqtt implements MQTT 3.1.1 only; the controller therefore uses 3.1.1 with it
    device = FakeDevice("pi-v5", embedded.port, protocol=mqtt.MQTTv5)
    try:
        assert device.refused, "amqtt accepted an MQTT 5 client; shared subscriptions may work"
    finally:
        device.close()
