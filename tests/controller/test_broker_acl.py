"""Generated Mosquitto files on a real Mosquitto: passwords, per-device ACLs, revocation."""

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

from controller.broker.mosquitto import Account, MosquittoFiles, write_mosquitto_files
from controller.broker.passwords import hash_password, verify_password
from controller.core.config import ControllerSettings
from controller.enrollment import Enrollment
from controller.ingest.service import IngestService
from controller.models import DeviceCreate
from shared.messages import HeartbeatBody, encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker

CONTROLLER_PASSWORD = "a-real-controller-secret-42"
BODY = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=10)


def _broker_with_files(
    files: MosquittoFiles, factory: Callable[..., MosquittoBroker]
) -> MosquittoBroker:
    return factory(
        ["allow_anonymous false", f"password_file {files.passwords}", f"acl_file {files.acl}"]
    )


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory Mosquitto can traverse after dropping root (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="edgefleet-broker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _enrollment(engine: Engine, data_dir: Path) -> Enrollment:
    settings = ControllerSettings(data_dir=data_dir, mqtt_password=CONTROLLER_PASSWORD)
    return Enrollment(engine, settings)


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
    broker = _broker_with_files(files, mosquitto_factory)
    service = ingest_factory(
        sqlite_engine, broker, client_id="acl-ctl", username="controller",
        password=CONTROLLER_PASSWORD, share_group="ctl",
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


def test_device_reads_only_its_own_cmd_and_controller_writes_cmd(
    sqlite_engine: Engine, broker_dir: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, creds = enrollment.enroll(DeviceCreate(id="pi-a"))
    enrollment.enroll(DeviceCreate(id="pi-b"))
    files = enrollment.sync_broker_files()
    assert files is not None
    broker = _broker_with_files(files, mosquitto_factory)
    device = FakeDevice("pi-a", broker.port, username="pi-a", password=creds.password)
    granted: list[int] = []
    device.client.on_subscribe = lambda c, u, mid, codes, p: granted.append(len(codes))
    topics = Topics()
    # Mosquitto 2 grants the SUBACK but applies `topic read` when delivering
    device.client.subscribe([(topics.device("pi-b", "cmd"), 1), (topics.device("pi-a", "cmd"), 1)])
    assert wait_until(lambda: bool(granted), 5)
    controller = mqtt.Client(CallbackAPIVersion.VERSION2, "ctl", protocol=mqtt.MQTTv5)
    controller.username_pw_set("controller", CONTROLLER_PASSWORD)
    controller.connect("127.0.0.1", broker.port)
    controller.loop_start()
    got: list[str] = []
    device.client.on_message = lambda c, u, m: got.append(m.topic)
    controller.publish(topics.device("pi-b", "cmd"), b"{}", qos=1).wait_for_publish(5)
    controller.publish(topics.device("pi-a", "cmd"), b"{}", qos=1).wait_for_publish(5)
    assert wait_until(lambda: bool(got), 5)
    time.sleep(0.2)
    assert got == [topics.device("pi-a", "cmd")]  # pi-b's command never reached pi-a
    controller.disconnect()
    controller.loop_stop()
    device.close()


def test_revoked_and_rotated_credentials_stop_working(
    sqlite_engine: Engine, broker_dir: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    enrollment = _enrollment(sqlite_engine, broker_dir)
    _, old = enrollment.enroll(DeviceCreate(id="pi-a"))
    enrollment.enroll(DeviceCreate(id="pi-b"))
    files = enrollment.sync_broker_files()
    assert files is not None
    broker = _broker_with_files(files, mosquitto_factory)
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


def _write_files(directory: Path, controller_password: str) -> MosquittoFiles:
    return write_mosquitto_files(
        directory, topics=Topics(), controller_user="controller",
        controller_password=controller_password, accounts=[DEVICE_ACCOUNT],
    )  # fmt: skip


def test_regenerating_unchanged_logins_writes_identical_files(tmp_path: Path) -> None:
    first = _write_files(tmp_path, CONTROLLER_PASSWORD)
    before = (first.passwords.read_bytes(), first.acl.read_bytes(), first.config.read_bytes())
    again = _write_files(tmp_path, CONTROLLER_PASSWORD)
    assert (again.passwords.read_bytes(), again.acl.read_bytes(), again.config.read_bytes()) == (
        before
    )


def test_a_new_controller_password_gets_a_new_hash(tmp_path: Path) -> None:
    old_line = _write_files(tmp_path, CONTROLLER_PASSWORD).passwords.read_text().splitlines()[0]
    files = _write_files(tmp_path, "a-rotated-controller-secret-7")
    new_line = files.passwords.read_text().splitlines()[0]
    assert new_line != old_line
    assert verify_password("a-rotated-controller-secret-7", new_line.split(":", 1)[1])
    assert not verify_password(CONTROLLER_PASSWORD, new_line.split(":", 1)[1])
