"""Generated Mosquitto files on a real Mosquitto: passwords, per-device ACLs, revocation,
client ids bound to logins, and files that are written whole or not at all."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from controller.broker.mosquitto import (
    Account,
    BrokerFileError,
    BrokerOptions,
    Listeners,
    MosquittoFiles,
    write_mosquitto_files,
)
from controller.broker.passwords import hash_password, verify_password
from controller.core.config import ControllerSettings
from controller.enrollment import Enrollment
from controller.ingest.service import IngestService
from controller.models import DeviceCreate
from shared.messages import HeartbeatBody, encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker
from tests.support.ports import free_port

CONTROLLER_PASSWORD = "a-real-controller-secret-42"
BODY = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=10)


def _broker_with_files(
    enrollment: Enrollment, factory: Callable[..., MosquittoBroker]
) -> MosquittoBroker:
    return factory(generated=enrollment.settings)


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory Mosquitto can traverse after dropping root (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="edgefleet-broker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _enrollment(engine: Engine, data_dir: Path) -> Enrollment:
    settings = ControllerSettings(
        data_dir=data_dir,
        mqtt_password=CONTROLLER_PASSWORD,
        mosquitto_listener_port=free_port(),
        mosquitto_listener_bind="127.0.0.1",
        mosquitto_controller_port=free_port(),
    )
    return Enrollment(engine, settings)


def _controller_client(enrollment: Enrollment, client_id: str = "ctl") -> mqtt.Client:
    """The controller's login on its own listener."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("controller", CONTROLLER_PASSWORD)
    client.connect("127.0.0.1", enrollment.settings.mosquitto_controller_port)
    client.loop_start()
    return client


def test_password_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "u", "s3cret"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", theirs)
    assert not verify_password("other", theirs)
    assert verify_password("s3cret", hash_password("s3cret"))


def test_a_device_cannot_publish_as_another_device(
    sqlite_engine: Engine,
    broker_dir: Path,
    mosquitto_factory: Callable[..., MosquittoBroker],
    ingest_factory: Callable[..., IngestService],
) -> None:
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds_a = enrollment.enroll(DeviceCreate(id="pi-a"))
    enrollment.enroll(DeviceCreate(id="pi-b"))
    files = enrollment.sync_broker_files()
    assert files is not None
    broker = _broker_with_files(enrollment, mosquitto_factory)
    controller_port = enrollment.settings.mosquitto_controller_port
    service = ingest_factory(
        sqlite_engine, broker, client_id="acl-ctl", username="controller",
        password=CONTROLLER_PASSWORD, share_group="ctl", port=controller_port,
    )  # fmt: skip
    device = FakeDevice("pi-a", broker.port, username="pi-a", password=creds_a.password)
    assert not device.refused
    # pi-a forging pi-b: on pi-b's topic with pi-b's id in the envelope
    forged = encode(make_envelope("pi-b", 1, BODY))
    refused = device.publish_raw(TopicKind.HEARTBEAT, forged, device_id="pi-b")
    refused.wait_for_publish(5)
    device.publish_body(BODY).wait_for_publish(5)
    assert wait_until(lambda: service.stats.stored >= 1)
    time.sleep(0.3)
    device.close()
    assert service.stats.received == 1, "the broker let a forged message through"
    assert service.stats.stored == 1


def test_a_device_cannot_forge_another_devices_chat_reply(
    sqlite_engine: Engine,
    broker_dir: Path,
    mosquitto_factory: Callable[..., MosquittoBroker],
) -> None:
    """A reply on pi-b's topics from pi-a never reaches the controller; pi-a's own do.

    pi-a's own: its plain chat-reply topic and its sub-topic for one controller replica
    (that replica's subscription, which the controller's ACL lets it read); not deeper.
    """
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds_a = enrollment.enroll(DeviceCreate(id="pi-a"))
    _, creds_b = enrollment.enroll(DeviceCreate(id="pi-b"))
    assert enrollment.sync_broker_files() is not None
    broker = _broker_with_files(enrollment, mosquitto_factory)
    controller = _controller_client(enrollment)
    got: list[str] = []
    topics = Topics()
    controller.on_message = lambda c, u, m: got.append(m.topic)
    controller.subscribe(topics.subscription(TopicKind.CHAT_REPLY), qos=1)
    controller.subscribe(topics.chat_replies("ctl-gateway"), qos=1)
    controller.subscribe(topics.chat_reply("pi-a", "ctl-gateway") + "/deeper", qos=1)
    time.sleep(0.3)
    device = FakeDevice("pi-a", broker.port, username="pi-a", password=creds_a.password)
    other = FakeDevice("pi-b", broker.port, username="pi-b", password=creds_b.password)
    for topic in (
        topics.chat_reply("pi-b"),
        topics.chat_reply("pi-b", "ctl-gateway"),
        topics.chat_reply("pi-a", "ctl-gateway") + "/deeper",
        topics.chat_reply("pi-a"),
        topics.chat_reply("pi-a", "ctl-gateway"),
    ):
        device.client.publish(topic, b"{}", qos=1).wait_for_publish(5)
    assert wait_until(lambda: len(got) >= 2, 5)
    time.sleep(0.3)
    assert sorted(got) == [topics.chat_reply("pi-a"), topics.chat_reply("pi-a", "ctl-gateway")]
    for client in (device, other):
        client.close()
    controller.disconnect()
    controller.loop_stop()


@pytest.mark.parametrize("kind", ["cmd", "stored", "chat-request"])
def test_device_reads_only_its_own_cmd_and_stored_and_only_the_controller_writes_them(
    kind: str,
    sqlite_engine: Engine,
    broker_dir: Path,
    mosquitto_factory: Callable[..., MosquittoBroker],
) -> None:
    """``stored`` matters as much as ``cmd``: a forged confirmation would make a device
    forget messages the controller never stored."""
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds = enrollment.enroll(DeviceCreate(id="pi-a"))
    _, creds_b = enrollment.enroll(DeviceCreate(id="pi-b"))
    files = enrollment.sync_broker_files()
    assert files is not None
    broker = _broker_with_files(enrollment, mosquitto_factory)
    device = FakeDevice("pi-a", broker.port, username="pi-a", password=creds.password)
    other = FakeDevice("pi-b", broker.port, username="pi-b", password=creds_b.password)
    granted: list[int] = []
    device.client.on_subscribe = lambda c, u, mid, codes, p: granted.append(len(codes))
    topics = Topics()
    # Mosquitto 2 grants the SUBACK but applies `topic read` when delivering
    device.client.subscribe([(topics.device("pi-b", kind), 1), (topics.device("pi-a", kind), 1)])
    assert wait_until(lambda: bool(granted), 5)
    controller = _controller_client(enrollment)
    got: list[str] = []
    device.client.on_message = lambda c, u, m: got.append(m.topic)
    other.client.publish(topics.device("pi-a", kind), b"{}", qos=1).wait_for_publish(5)
    controller.publish(topics.device("pi-b", kind), b"{}", qos=1).wait_for_publish(5)
    controller.publish(topics.device("pi-a", kind), b"{}", qos=1).wait_for_publish(5)
    assert wait_until(lambda: bool(got), 5)
    time.sleep(0.2)
    assert got == [topics.device("pi-a", kind)]  # neither pi-b's own nor pi-b's forgery
    controller.disconnect()
    controller.loop_stop()
    device.close()
    other.close()


def test_revoked_and_rotated_credentials_stop_working(
    sqlite_engine: Engine, broker_dir: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, old = enrollment.enroll(DeviceCreate(id="pi-a"))
    enrollment.enroll(DeviceCreate(id="pi-b"))
    files = enrollment.sync_broker_files()
    assert files is not None
    broker = _broker_with_files(enrollment, mosquitto_factory)
    pid_file = broker_dir / "mosquitto.pid"
    assert broker._process is not None
    pid_file.write_text(str(broker._process.pid))
    enrollment = Enrollment(
        sqlite_engine, enrollment.settings.model_copy(update={"mosquitto_pid_file": pid_file})
    )
    new = enrollment.rotate("pi-a")  # rewrites the files and SIGHUPs the broker
    time.sleep(0.5)
    assert FakeDevice("pi-a", broker.port, username="pi-a", password=old.password).refused
    ok = FakeDevice("pi-a", broker.port, username="pi-a", password=new.password)
    assert not ok.refused
    ok.close()
    assert enrollment.revoke("pi-a") == 1
    time.sleep(0.5)
    assert FakeDevice("pi-a", broker.port, username="pi-a", password=new.password).refused
    assert "pi-a" not in files.acl.read_text() and "user pi-b" in files.acl.read_text()


DEVICE_ACCOUNT = Account("pi-a", hash_password("device-a-secret-123"), "pi-a")
"""A device login as the registry stores it: one hash, read back unchanged every time."""


def _write_files(
    directory: Path, controller_password: str, accounts: list[Account] | None = None
) -> MosquittoFiles:
    return write_mosquitto_files(
        directory, topics=Topics(), controller_user="controller",
        controller_password=controller_password,
        accounts=[DEVICE_ACCOUNT] if accounts is None else accounts,
        listeners=Listeners(), options=BrokerOptions(),
    )  # fmt: skip


def test_regenerating_unchanged_logins_writes_identical_files(tmp_path: Path) -> None:
    first = _write_files(tmp_path, CONTROLLER_PASSWORD)
    before = (first.passwords.read_bytes(), first.acl.read_bytes(), first.config.read_bytes())
    again = _write_files(tmp_path, CONTROLLER_PASSWORD)
    assert (again.passwords.read_bytes(), again.acl.read_bytes(), again.config.read_bytes()) == (
        before
    )


def test_a_new_controller_password_gets_a_new_hash(tmp_path: Path) -> None:
    first = _write_files(tmp_path, CONTROLLER_PASSWORD)
    old_line = first.controller_passwords.read_text().splitlines()[0]
    files = _write_files(tmp_path, "a-rotated-controller-secret-7")
    new_line = files.controller_passwords.read_text().splitlines()[0]
    assert new_line != old_line
    assert verify_password("a-rotated-controller-secret-7", new_line.split(":", 1)[1])
    assert not verify_password(CONTROLLER_PASSWORD, new_line.split(":", 1)[1])


def test_controller_and_device_logins_work_only_on_their_own_listener(
    sqlite_engine: Engine, broker_dir: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds = enrollment.enroll(DeviceCreate(id="pi-a"))
    broker = _broker_with_files(enrollment, mosquitto_factory)
    controller_port = enrollment.settings.mosquitto_controller_port
    assert FakeDevice("pi-a", controller_port, username="pi-a", password=creds.password).refused
    on_device_listener = FakeDevice(
        "controller", broker.port, username="controller", password=CONTROLLER_PASSWORD
    )
    assert on_device_listener.refused


def test_a_device_cannot_take_over_the_controllers_or_another_devices_session(
    sqlite_engine: Engine,
    broker_dir: Path,
    mosquitto_factory: Callable[..., MosquittoBroker],
    ingest_factory: Callable[..., IngestService],
) -> None:
    """Finding 1: a device connecting with the controller's client id stopped ingest."""
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds_a = enrollment.enroll(DeviceCreate(id="pi-a"))
    _, creds_b = enrollment.enroll(DeviceCreate(id="pi-b"))
    broker = _broker_with_files(enrollment, mosquitto_factory)
    service = ingest_factory(
        sqlite_engine, broker, client_id="edgefleet-controller", username="controller",
        password=CONTROLLER_PASSWORD, port=enrollment.settings.mosquitto_controller_port,
    )  # fmt: skip
    victim = FakeDevice("pi-b", broker.port, username="pi-b", password=creds_b.password)
    generation = service.connection.generation
    for stolen_id in ("edgefleet-controller", "pi-b"):
        attacker = mqtt.Client(
            CallbackAPIVersion.VERSION2, stolen_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        attacker.username_pw_set("pi-a", creds_a.password)
        attacker.connect("127.0.0.1", broker.port)
        attacker.loop_start()
        time.sleep(0.5)
        attacker.disconnect()
        attacker.loop_stop()
    sent = [victim.publish_body(BODY) for _ in range(20)]
    assert victim.wait_acked(sent, 10)
    assert wait_until(lambda: service.stats.stored >= 20, 10)
    assert service.connection.generation == generation, "the controller was kicked off"
    assert service.connection.takeovers == 0
    victim.close()
    assert service.stats.stored == 20


def test_a_login_that_could_forge_a_password_line_is_refused_and_old_files_stay(
    tmp_path: Path,
) -> None:
    """Finding 3: id "x\nzz" wrote a forged ``zz:$7$...`` line into the password file."""
    good = _write_files(tmp_path, CONTROLLER_PASSWORD)
    before = {p: p.read_bytes() for p in (good.passwords, good.acl, good.config)}
    forged = Account("x\nzz", DEVICE_ACCOUNT.password_hash, "x\nzz")
    with pytest.raises(BrokerFileError):
        _write_files(tmp_path, CONTROLLER_PASSWORD, [DEVICE_ACCOUNT, forged])
    with pytest.raises(BrokerFileError):
        _write_files(tmp_path, CONTROLLER_PASSWORD, [Account("pi-c", "$7$x\nzz:y", "pi-c")])
    assert {p: p.read_bytes() for p in before} == before
    assert not list(tmp_path.glob(".*.tmp"))
