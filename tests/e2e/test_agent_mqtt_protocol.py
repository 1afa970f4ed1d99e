"""The agent against the controller's default broker (amqtt, MQTT 3.1.1 only) and Mosquitto.

``mqtt_protocol: auto`` must connect to both: MQTT 5 where the broker speaks
it, 3.1.1 after the broker refuses the version, with the persistent session,
the will and the outbox still working.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from agent.config import load_settings
from agent.daemon import Agent
from controller.broker.embedded import EmbeddedAuth, EmbeddedBroker
from controller.broker.passwords import hash_password
from controller.core.config import ControllerSettings
from controller.enrollment import Enrollment
from controller.models import DeviceCreate
from shared.messages import CmdBody, IdentifyCommand, encode, make_envelope
from shared.topics import Topics
from tests.agent.daemon_support import (
    Recorder,
    agent_config,
    agent_process,
    wait_until,
    write_config,
)
from tests.controller import conftest as controller_fixtures
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)
TOPICS = Topics()
CONTROLLER_PW = "embedded-controller-pw-9"
sqlite_engine = controller_fixtures.sqlite_engine  # a migrated SQLite database


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port()).start()
    yield broker
    broker.stop()


def _agent(tmp_path: Path, port: int, device_id: str, **overrides: object) -> Agent:
    return Agent(
        load_settings(None, **agent_config(tmp_path, port, device_id=device_id, **overrides))
    )


def _identify(recorder: Recorder, device_id: str, command_id: str) -> None:
    command = IdentifyCommand(command_id=command_id)
    envelope = make_envelope(device_id, 1, CmdBody(command=command))
    recorder.publish(TOPICS.device(device_id, "cmd"), encode(envelope))


def _acked(recorder: Recorder, command_id: str) -> bool:
    return any(m["body"]["command_id"] == command_id for m in recorder.of_kind("ack"))


def test_auto_falls_back_to_311_on_the_embedded_broker_and_works(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    recorder = Recorder(embedded.port, TOPICS.device_namespace("dev-amq"), client_id="rec-amq")
    agent = _agent(tmp_path, embedded.port, "dev-amq")
    agent.start()
    try:
        assert agent.link.wait_connected(20)
        assert agent.link.protocol == "3.1.1"
        assert agent.link.broker_refusals == 0  # a version fallback is not a refusal
        assert wait_until(lambda: recorder.of_kind("hello") and recorder.of_kind("state"), 20)
        assert wait_until(lambda: len(recorder.of_kind("heartbeat")) >= 2, 20)
        _identify(recorder, "dev-amq", "id-amq")
        assert wait_until(lambda: _acked(recorder, "id-amq"), 20)
        assert wait_until(lambda: agent.link.outbox.depth() == 0, 20)  # PUBACKs drain the outbox
    finally:
        agent.stop()
        recorder.close()


def test_forced_mqtt5_is_refused_by_the_embedded_broker_and_never_marked_connected(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    agent = _agent(tmp_path, embedded.port, "dev-v5", mqtt_protocol="5")
    agent.start()
    try:
        # amqtt leaves a v5 CONNECT with a will unanswered: the link gives up and retries
        assert wait_until(lambda: agent.link.unanswered_connects >= 2, 30)
        assert not agent.link.connected
        assert agent.link.protocol == "5"
    finally:
        agent.stop()


def test_auto_keeps_mqtt5_where_the_broker_speaks_it(mosquitto_factory, tmp_path: Path) -> None:
    broker = mosquitto_factory()
    agent = _agent(tmp_path, broker.port, "dev-mq5")
    agent.start()
    try:
        assert agent.link.wait_connected(20)
        assert agent.link.protocol == "5"
    finally:
        agent.stop()


def test_forced_311_on_mosquitto_keeps_its_session_across_restarts(
    mosquitto_factory, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    config = agent_config(tmp_path, broker.port, device_id="dev-311", mqtt_protocol="3.1.1")
    first = Agent(load_settings(None, **config))
    first.start()
    assert first.link.wait_connected(20)
    assert first.link.protocol == "3.1.1"
    first.stop()
    sender = Recorder(broker.port, TOPICS.device("dev-311", "ack"), client_id="send-311")
    _identify(sender, "dev-311", "while-away-311")
    second = Agent(load_settings(None, **config))
    second.start()
    try:
        assert wait_until(lambda: _acked(sender, "while-away-311"), 20)
    finally:
        second.stop()
        sender.close()


@pytest.fixture
def secured(sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Enrollment]]:
    """The embedded broker as ``controller run`` starts it: logins and ACLs from the registry."""
    enrollment = Enrollment(sqlite_engine, ControllerSettings(data_dir=tmp_path, dev_mode=True))
    auth = EmbeddedAuth(
        db_url=str(sqlite_engine.url),
        controller_user="controller",
        controller_password_hash=hash_password(CONTROLLER_PW),
        controller_client_id="edgefleet-controller",
        topic_prefix=TOPICS.prefix,
    )
    broker = EmbeddedBroker(port=free_port(), auth=auth).start()
    yield broker, enrollment
    broker.stop()


def _controller_client(port: int, acks: list[str]) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="ctl-311", clean_session=True)
    client.username_pw_set("controller", CONTROLLER_PW)
    client.on_message = lambda _c, _u, m: acks.append(json.loads(m.payload)["body"]["command_id"])
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(TOPICS.device("dev-away", "ack"), qos=1)
    return client


def test_commands_queued_while_away_reach_the_agent_on_the_secured_embedded_broker(
    secured: tuple[EmbeddedBroker, Enrollment], tmp_path: Path
) -> None:
    # amqtt keeps offline messages only for authenticated persistent sessions, as deployed
    broker, enrollment = secured
    _, creds = enrollment.enroll(DeviceCreate(id="dev-away"))
    config = agent_config(
        tmp_path, broker.port, device_id="dev-away", mqtt_username="dev-away",
        mqtt_password=creds.password,
    )  # fmt: skip
    first = Agent(load_settings(None, **config))
    first.start()
    assert first.link.wait_connected(20)
    first.stop()
    acks: list[str] = []
    controller = _controller_client(broker.port, acks)
    command = IdentifyCommand(command_id="while-away-amq")
    envelope = make_envelope("dev-away", 1, CmdBody(command=command))
    controller.publish(TOPICS.device("dev-away", "cmd"), encode(envelope), qos=1).wait_for_publish(
        5
    )
    second = Agent(load_settings(None, **config))
    second.start()
    try:
        assert wait_until(lambda: "while-away-amq" in acks, 20)
        assert second.link.protocol == "3.1.1"
    finally:
        second.stop()
        controller.loop_stop()
        controller.disconnect()


def test_will_marks_a_killed_agent_offline_on_the_embedded_broker(
    embedded: EmbeddedBroker, tmp_path: Path
) -> None:
    config = agent_config(tmp_path, embedded.port, device_id="dev-will")
    process = agent_process(write_config(tmp_path, config), tmp_path / "agent.log")
    recorder = Recorder(embedded.port, TOPICS.device("dev-will", "state"), client_id="rec-will")
    try:
        assert wait_until(
            lambda: any(m["body"]["status"] == "online" for m in recorder.of_kind("state")), 40
        )
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert wait_until(
            lambda: any(m["body"]["status"] == "offline" for m in recorder.of_kind("state")), 20
        ), json.dumps(recorder.of_kind("state"))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        recorder.close()
