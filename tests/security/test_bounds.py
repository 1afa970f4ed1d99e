"""Every input has a bound (finding 5): HTTP bodies per route, MQTT packets, body strings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.demo.local_fleet import poll
from tests.controller.api.conftest import Api, start_api
from tests.support.controller_process import ControllerProcess
from tests.support.load import LoadPublisher

UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def small_api(tmp_path: Path) -> Iterator[Api]:
    running = start_api(tmp_path / "data", http_max_upload_bytes=UPLOAD_LIMIT)
    yield running
    running.server.stop()
    running.engine.dispose()


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_a_json_body_over_the_limit_gets_413_declared_or_streamed(small_api: Api) -> None:
    big = b'{"id": "pi-a", "name": "' + b"x" * 2_000_000 + b'"}'
    with small_api.client("operator") as client:
        declared = client.post(
            "/api/v1/devices", content=big, headers={"content-type": "application/json"}
        )
        streamed = client.post(
            "/api/v1/devices",
            content=_chunks(3_000_000),
            headers={"content-type": "application/json"},
        )
        assert client.get("/api/v1/devices").json()["total"] == 0
    assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"
    assert streamed.status_code == 413, streamed.text


def test_an_upload_over_its_limit_gets_413_and_leaves_no_file(small_api: Api) -> None:
    models_dir = small_api.settings.models_dir
    with small_api.client("admin") as client:
        response = client.post(
            "/api/v1/models/upload",
            params={"model_id": "too-big"},
            content=_chunks(UPLOAD_LIMIT * 4, 8192),
            headers={"content-type": "application/octet-stream"},
        )
    assert response.status_code == 413, response.text
    leftovers = [p for p in models_dir.rglob("*") if p.is_file()] if models_dir.exists() else []
    assert leftovers == []


def test_the_broker_refuses_a_packet_over_the_limit_and_keeps_serving(tmp_path: Path) -> None:
    controller = ControllerProcess(tmp_path).start()
    try:
        password = controller.enroll("pi-big")
        lost: list[bool] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "pi-big", protocol=mqtt.MQTTv311)
        client.username_pw_set("pi-big", password)
        client.on_disconnect = lambda c, u, f, reason, p: lost.append(True)
        client.connect("127.0.0.1", controller.broker_port)
        client.loop_start()
        topic = "edgefleet/v1/devices/pi-big/heartbeat"
        client.publish(topic, b"x" * (5 * 1024 * 1024), qos=1)
        poll(lambda: lost, 15)  # the broker dropped the oversized publisher
        client.loop_stop()
        publisher = LoadPublisher("pi-big", password, controller.broker_port, rate=100).start()
        poll(lambda: len(publisher.acked) >= 10, 15)
        publisher.stop()
        acked = publisher.acked
        poll(lambda: acked <= controller.stored_seqs("pi-big"), 20)
        health = controller.healthz()
        assert health["status"] == "ok", health
    finally:
        controller.stop()
