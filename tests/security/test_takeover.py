"""No device can take over the controller's session, and ingest says when anything does.

Finding 1: a device connecting with the controller's client id (clean session
off) left ingest storing 0 of every later message while /healthz said ok.
Finding 9: anonymous clients on the loopback broker could forge heartbeats and
read ``#``. Both against a real ``controller run`` at its defaults.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.demo.local_fleet import poll
from tests.support.controller_process import ADMIN, ControllerProcess
from tests.support.load import LoadPublisher

CONTROLLER_PASSWORD = "takeover-test-controller-secret"


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    process = ControllerProcess(tmp_path, mqtt_password=CONTROLLER_PASSWORD).start()
    yield process
    process.stop()


def _connect(port: int, client_id: str, username: str | None, password: str | None) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv311, clean_session=False
    )
    if username:
        client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _stored_after(controller: ControllerProcess, device_id: str, password: str, n: int) -> int:
    publisher = LoadPublisher(device_id, password, controller.broker_port, rate=200).start()
    poll(lambda: len(publisher.acked) >= n, 30)
    publisher.stop()
    acked = publisher.acked
    try:
        poll(lambda: acked <= controller.stored_seqs(device_id), 20)
    except TimeoutError:
        pass
    return len(acked & controller.stored_seqs(device_id))


def test_a_device_using_the_controllers_client_id_does_not_stop_ingest(
    controller: ControllerProcess,
) -> None:
    attacker_password = controller.enroll("pi-a")
    victim_password = controller.enroll("pi-b")
    for _ in range(3):
        attacker = _connect(
            controller.broker_port, "edgefleet-controller", "pi-a", attacker_password
        )
        time.sleep(0.5)
        attacker.disconnect()
        attacker.loop_stop()
    assert _stored_after(controller, "pi-b", victim_password, 100) >= 100
    health = controller.healthz()
    assert health["status"] == "ok" and health["ingest"] == "ok", health


def test_anonymous_clients_are_refused_on_the_loopback_broker(
    controller: ControllerProcess,
) -> None:
    refused: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, "anon", protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, u, f, reason, p: refused.append(reason.is_failure)
    client.connect("127.0.0.1", controller.broker_port)
    client.loop_start()
    poll(lambda: refused, 10)
    client.loop_stop()
    assert refused == [True]


def _degraded(controller: ControllerProcess) -> dict[str, object] | None:
    health = controller.healthz()
    return health if health["ingest"] in ("taken_over", "flapping") else None


def test_healthz_and_metrics_report_a_session_takeover(controller: ControllerProcess) -> None:
    conf = (controller.workdir / "controller" / "broker" / "mosquitto.conf").read_text()
    controller_port = int(re.findall(r"^listener (\d+) 127\.0\.0\.1$", conf, re.M)[-1])
    # a second client with the controller's own login and client id (a misconfigured replica)
    intruder = _connect(controller_port, "edgefleet-controller", "controller", CONTROLLER_PASSWORD)
    try:
        health = poll(lambda: _degraded(controller), 30)
    finally:
        intruder.disconnect()
        intruder.loop_stop()
    assert health["status"] == "degraded"
    assert httpx.get(controller.url + "/healthz", timeout=5).status_code == 503
    metrics = httpx.get(
        controller.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5
    ).text
    assert "edgefleet_ingest_healthy 0.0" in metrics
    assert re.search(r"edgefleet_ingest_connection_losses_total [1-9]", metrics)
