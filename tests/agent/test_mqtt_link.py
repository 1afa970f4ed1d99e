"""The MQTT link: refused connects, reconnects that resubscribe and republish, back-off."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.link.session import Backoff
from shared.messages import CmdBody, IdentifyCommand, encode, make_envelope
from shared.topics import Topics
from tests.agent.daemon_support import Recorder, make_agent, wait_until

pytestmark = pytest.mark.timeout(120)
TOPICS = Topics()


def test_backoff_grows_exponentially_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(8)]
    assert all(0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[4:]) > 2.0  # it does grow
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() == 0.5


def _dev_auth_agent(tmp_path: Path, broker_port: int, password: str) -> Agent:
    return make_agent(
        tmp_path,
        broker_port,
        device_id="dev-auth",
        mqtt_username="dev-auth",
        mqtt_password=password,
    )


def test_refused_connection_is_not_treated_as_connected(mosquitto_factory, tmp_path: Path):
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "dev-auth", "right-pass"], check=True
    )
    passwords.chmod(0o644)
    broker = mosquitto_factory(["allow_anonymous false", f"password_file {passwords}"])
    wrong = _dev_auth_agent(tmp_path / "a", broker.port, "wrong-pass")
    wrong.start()
    try:
        assert wait_until(lambda: wrong.link.broker_refusals >= 2, 20)
        assert not wrong.link.connected
        assert wrong.outbox.depth() > 0  # heartbeats wait in the outbox, nothing is lost
    finally:
        wrong.stop()
    right = _dev_auth_agent(tmp_path / "b", broker.port, "right-pass")
    right.start()
    try:
        assert right.link.wait_connected(20)
    finally:
        right.stop()


def test_reconnect_republishes_retained_and_resubscribes(mosquitto_factory, tmp_path: Path):
    broker = mosquitto_factory()
    agent = make_agent(tmp_path, broker.port, device_id="dev-re", heartbeat_interval_s=0.2)
    agent.start()
    try:
        assert agent.link.wait_connected(20)
        broker.stop()
        assert wait_until(lambda: not agent.link.connected, 20)
        time.sleep(0.6)
        assert agent.heartbeat_body().outbox_depth > 0  # the depth is reported in heartbeats
        broker.start()  # persistence false: the broker forgot every retained message
        assert agent.link.wait_connected(20)
        late = Recorder(broker.port, TOPICS.device_namespace("dev-re"), client_id="late-re")
        assert wait_until(lambda: late.of_kind("hello") and late.of_kind("state"), 20)
        command = IdentifyCommand(command_id="after-restart")
        late.publish(
            TOPICS.device("dev-re", "cmd"),
            encode(make_envelope("dev-re", 1, CmdBody(command=command))),
        )
        assert wait_until(
            lambda: any(m["body"]["command_id"] == "after-restart" for m in late.of_kind("ack")), 20
        )
        late.close()
    finally:
        agent.stop()


def test_commands_sent_while_the_agent_was_away_are_delivered_on_return(
    mosquitto_factory, tmp_path: Path
):
    broker = mosquitto_factory()
    first = make_agent(tmp_path, broker.port, device_id="dev-away")
    first.start()
    assert first.link.wait_connected(20)
    first.stop()
    sender = Recorder(broker.port, TOPICS.device("dev-away", "ack"), client_id="sender-away")
    command = IdentifyCommand(command_id="while-away")
    sender.publish(
        TOPICS.device("dev-away", "cmd"),
        encode(make_envelope("dev-away", 1, CmdBody(command=command))),
    )
    second = make_agent(tmp_path, broker.port, device_id="dev-away")
    second.start()
    try:
        assert wait_until(
            lambda: any(m["body"]["command_id"] == "while-away" for m in sender.of_kind("ack")), 20
        )
    finally:
        second.stop()
        sender.close()
