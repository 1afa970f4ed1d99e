"""The controller CLI as a real process: `run` with either local broker, `mosquitto-config`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, select
from sqlmodel import Session

from controller.models import Device, DeviceClass
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES
from tests.support.broker import MosquittoBroker
from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_CONTROLLER_")}
    env |= {"PYTHONPATH": str(ROOT), "EDGEFLEET_CONTROLLER_DATA_DIR": str(data_dir), **extra}
    return env


ADMIN_TOKEN = "cli-test-admin-token-0123456789abcdef"


@pytest.mark.parametrize("local_broker", ["mosquitto", "embedded"])
def test_run_with_a_local_broker_ingests_serves_and_stops_cleanly(
    tmp_path: Path, local_broker: str
) -> None:
    port, api_port = free_port(), free_port()
    env = _env(
        tmp_path,
        EDGEFLEET_CONTROLLER_LOCAL_BROKER=local_broker,
        EDGEFLEET_CONTROLLER_EMBEDDED_BROKER_PORT=str(port),
        EDGEFLEET_CONTROLLER_API_PORT=str(api_port),
        EDGEFLEET_CONTROLLER_BOOTSTRAP_ADMIN_TOKEN=ADMIN_TOKEN,
        EDGEFLEET_CONTROLLER_DEVICE_CLASSES_DIR=str(ROOT / "firmware-config" / "classes"),
    )
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "controller", "run"], env=env, stdout=log, stderr=log
    )
    api = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        wait_for_port(api_port, timeout=60)
        anonymous = FakeDevice("pi-cli", port, protocol=mqtt.MQTTv311)
        assert anonymous.refused, "the local broker let an anonymous client in"
        anonymous.close()
        enrolled = httpx.post(f"{api}/api/v1/devices", headers=headers, json={"id": "pi-cli"})
        password = enrolled.json()["credentials"]["password"]
        device = FakeDevice(
            "pi-cli", port, protocol=mqtt.MQTTv311, username="pi-cli", password=password
        )
        assert not device.refused
        device.publish_body(EXAMPLE_BODIES["hello"]).wait_for_publish(5)
        engine = create_engine(f"sqlite:///{tmp_path / 'controller.db'}")

        def seen() -> bool:
            with Session(engine) as session:
                return session.exec(select(Device.hello_at)).first() is not None  # type: ignore[call-overload]

        assert wait_until(seen, 20), (tmp_path / "controller.log").read_text()
        device.close()
        with Session(engine) as session:
            assert session.get(DeviceClass, "pi4-4gb") is not None
        assert httpx.get(f"{api}/healthz").json()["ingest"] == "ok"
        listed = httpx.get(f"{api}/api/v1/devices", headers=headers).json()
        assert [d["id"] for d in listed["items"]] == ["pi-cli"]

        # /metrics reads the running ingest's counters (the one hello stored); the counter
        # moves just after the commit that made the row visible, so it is waited for
        def counted() -> bool:
            metrics = httpx.get(f"{api}/metrics", headers=headers).text
            return "edgefleet_ingest_messages_stored_total 1.0" in metrics

        assert wait_until(counted, 10)
        # a command through the API goes out through the runtime's MQTT connection
        sent = httpx.post(
            f"{api}/api/v1/commands", headers=headers,
            json={"device_id": "pi-cli", "command": {"type": "identify"}},
        )  # fmt: skip
        assert sent.status_code == 202, sent.text
        assert [c["status"] for c in sent.json()["commands"]] == ["sent"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    log_text = (tmp_path / "controller.log").read_text()
    assert code == 0, log_text
    assert "controller runtime stopped" in log_text


def test_mosquitto_config_refuses_to_run_without_a_controller_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", "mosquitto-config"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "MQTT_PASSWORD" in result.stderr


def test_placeholder_secret_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    env = _env(tmp_path, EDGEFLEET_CONTROLLER_MQTT_PASSWORD="changeme")
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", "mosquitto-config"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "placeholder" in result.stderr


def test_mosquitto_config_writes_both_listeners_files(tmp_path: Path) -> None:
    out = tmp_path / "mosq"
    env = _env(tmp_path, EDGEFLEET_CONTROLLER_MQTT_PASSWORD="a-long-random-controller-pw")
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", "mosquitto-config", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "controller.passwd").read_text().startswith("controller:$7$101$")
    assert (out / "passwd").read_text() == ""  # no device enrolled yet
    assert "user controller" in (out / "controller.acl").read_text()
    conf = (out / "mosquitto.conf").read_text()
    assert f"acl_file {out / 'acl'}" in conf and "use_username_as_clientid true" in conf
    assert "max_packet_size 1056768" in conf
    assert "a-long-random-controller-pw" not in result.stdout + result.stderr


def test_run_against_mosquitto_with_generated_acls(
    mosquitto_factory: Callable[..., MosquittoBroker],
) -> None:
    from controller.core.config import ControllerSettings
    from controller.core.db import create_db_engine, migrate
    from controller.enrollment import Enrollment
    from controller.models import DeviceCreate

    data = Path(tempfile.mkdtemp(prefix="edgefleet-run-"))  # Mosquitto must traverse it
    data.chmod(0o755)
    try:
        password = "controller-secret-for-run-test"
        settings = ControllerSettings(
            data_dir=data,
            mqtt_password=password,
            mosquitto_listener_port=free_port(),
            mosquitto_listener_bind="127.0.0.1",
            mosquitto_controller_port=free_port(),
        )
        engine = create_db_engine(settings.db_url)
        migrate(engine)
        _, creds = Enrollment(engine, settings).enroll(DeviceCreate(id="pi-prod"))
        engine.dispose()
        broker = mosquitto_factory(generated=settings)
        api_port = free_port()
        env = _env(
            data,
            EDGEFLEET_CONTROLLER_BROKER_URL=f"mqtt://127.0.0.1:{settings.mosquitto_controller_port}",
            EDGEFLEET_CONTROLLER_MQTT_PASSWORD=password,
            EDGEFLEET_CONTROLLER_API_PORT=str(api_port),
        )
        log_path = data / "controller.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "controller", "run"],
            env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            device = FakeDevice("pi-prod", broker.port, username="pi-prod", password=creds.password)
            assert not device.refused
            engine = create_engine(settings.db_url)

            def has_state() -> bool:
                # published again until the controller's subscription is in place
                device.publish_body(EXAMPLE_BODIES["state"]).wait_for_publish(5)
                with Session(engine) as session:
                    row = session.get(Device, "pi-prod")
                    return row is not None and row.status == "online"

            assert wait_until(has_state, 30), log_path.read_text()
            device.close()
            # ingest starts before the API server: stop it only once it is fully up
            wait_for_port(api_port, timeout=60)
            assert password not in log_path.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log_path.read_text()
    finally:
        shutil.rmtree(data, ignore_errors=True)
