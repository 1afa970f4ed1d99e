"""The embedded amqtt broker: real paho clients (MQTT 3.1.1) through it into ingest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine

from controller.broker.embedded import EmbeddedAuth, EmbeddedBroker
from controller.broker.embedded_auth import topic_allowed
from controller.broker.passwords import hash_password
from controller.core.config import ControllerSettings
from controller.enrollment import Enrollment
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from controller.models import DeviceCreate
from shared.messages import encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES
from tests.support.ports import free_port

CONTROLLER_PW = "embedded-controller-pw-9"


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
        kinds = [k for k in TopicKind if k.ingested]
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


@pytest.fixture
def secured(sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Enrollment]]:
    """The embedded broker checking logins and ACLs against the registry, like Mosquitto."""
    settings = ControllerSettings(data_dir=tmp_path, dev_mode=True)
    enrollment = Enrollment(sqlite_engine, settings)
    auth = EmbeddedAuth(
        db_url=str(sqlite_engine.url),
        controller_user="controller",
        controller_password_hash=hash_password(CONTROLLER_PW),
        controller_client_id="edgefleet-controller",
        topic_prefix="edgefleet/v1",
    )
    broker = EmbeddedBroker(port=free_port(), auth=auth).start()
    yield broker, enrollment
    broker.stop()


def test_secured_embedded_broker_enforces_logins_and_device_acls(
    sqlite_engine: Engine, secured: tuple[EmbeddedBroker, Enrollment]
) -> None:
    broker, enrollment = secured
    _, creds = enrollment.enroll(DeviceCreate(id="pi-sec"))
    enrollment.enroll(DeviceCreate(id="pi-victim"))
    options = MqttOptions(
        host="127.0.0.1", port=broker.port, protocol="3.1.1", client_id="sec-ctl",
        username="controller", password=CONTROLLER_PW,
    )  # fmt: skip
    service = IngestService(
        sqlite_engine, options, topics=Topics(), config=IngestConfig(flush_interval_s=0.05)
    ).start()
    try:
        assert service.connection.wait_connected(10)
        v3 = mqtt.MQTTv311
        assert FakeDevice("pi-anon", broker.port, protocol=v3).refused
        assert FakeDevice(
            "pi-sec", broker.port, protocol=v3, username="pi-sec", password="x"
        ).refused
        device = FakeDevice(
            "pi-sec", broker.port, protocol=v3, username="pi-sec", password=creds.password
        )
        assert not device.refused
        forged = encode(make_envelope("pi-victim", 1, EXAMPLE_BODIES[TopicKind.HEARTBEAT]))
        device.publish_raw(TopicKind.HEARTBEAT, forged, device_id="pi-victim").wait_for_publish(5)
        device.publish_body(EXAMPLE_BODIES[TopicKind.HEARTBEAT]).wait_for_publish(5)
        assert wait_until(lambda: service.stats.stored >= 1)
        wait_until(lambda: False, 0.3)
        device.close()
        assert service.stats.received == 1  # the forged message never left the broker
        enrollment.revoke("pi-sec")
        assert FakeDevice(
            "pi-sec", broker.port, protocol=v3, username="pi-sec", password=creds.password
        ).refused
    finally:
        service.stop()


T = Topics()


@pytest.mark.parametrize(
    ("username", "topic", "action", "allowed"),
    [
        ("pi-1", T.device("pi-1", "state"), "publish", True),
        ("pi-1", T.device("pi-2", "state"), "publish", False),
        ("pi-1", T.device("pi-1", "cmd"), "publish", False),
        ("pi-1", T.device("pi-1", "cmd"), "subscribe", True),
        ("pi-1", T.device("pi-2", "cmd"), "receive", False),
        ("pi-1", T.device("pi-1", "stored"), "receive", True),
        ("pi-1", T.device("pi-2", "stored"), "receive", False),
        ("pi-1", T.device("pi-1", "stored"), "publish", False),
        ("pi-2", T.device("pi-1", "stored"), "publish", False),
        ("pi-1", T.subscription(), "subscribe", False),
        ("controller", T.subscription(), "subscribe", True),
        ("controller", T.device("pi-1", "cmd"), "publish", True),
        ("controller", T.device("pi-1", "stored"), "publish", True),
        ("controller", T.device("pi-1", "state"), "publish", False),
        ("pi-1", T.device("pi-1", "chat-request"), "receive", True),
        ("pi-1", T.device("pi-2", "chat-request"), "receive", False),
        ("pi-1", T.device("pi-2", "chat-request"), "subscribe", False),
        ("pi-1", T.device("pi-1", "chat-request"), "publish", False),
        ("pi-1", T.device("pi-1", "chat-reply"), "publish", True),
        ("pi-1", T.device("pi-2", "chat-reply"), "publish", False),
        ("pi-1", T.device("pi-2", "chat-reply"), "receive", False),
        ("controller", T.device("pi-1", "chat-request"), "publish", True),
        ("controller", T.device("pi-1", "chat-reply"), "publish", False),
        ("controller", T.device("pi-1", "chat-reply"), "receive", True),
        ("pi-1", T.chat_reply("pi-1", "gw-a"), "publish", True),
        ("pi-1", T.chat_reply("pi-2", "gw-a"), "publish", False),
        ("pi-1", T.chat_reply("pi-1", "gw-a"), "receive", False),
        ("pi-1", T.chat_reply("pi-1", "gw-a") + "/deeper", "publish", False),
        ("pi-1", T.device("pi-1", "chat-reply") + "/bad+id", "publish", False),
        ("pi-1", T.device("pi-1", "cmd") + "/gw-a", "receive", False),
        ("pi-1", T.device_namespace("pi-1"), "subscribe", False),
        ("controller", T.chat_replies("gw-a"), "subscribe", True),
        ("controller", T.chat_reply("pi-1", "gw-a"), "receive", True),
        ("controller", T.chat_reply("pi-1", "gw-a"), "publish", False),
        ("Not A Device", "x", "publish", False),
    ],
)
def test_topic_acl_rules(username: str, topic: str, action: str, allowed: bool) -> None:
    result = topic_allowed(
        username=username, controller_user="controller", topics=T, topic=topic, action=action
    )
    assert result is allowed
