"""Commands over HTTP: to a device or a class, through real Mosquitto, acks visible in the API."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlmodel import Session

from controller.ingest.service import IngestService
from controller.models import Device
from shared.messages import AckBody, AckStatus, parse_message
from shared.suites.builtin import builtin_bytes, builtin_source
from shared.topics import TopicKind, Topics
from tests.controller.api.conftest import Api
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker


def _listening(device_id: str, port: int) -> tuple[FakeDevice, list[tuple[str, bytes]]]:
    device = FakeDevice(device_id, port)
    received: list[tuple[str, bytes]] = []
    device.client.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    device.client.subscribe(Topics().device(device_id, TopicKind.CMD), qos=1)
    wait_until(lambda: False, 0.3)
    return device, received


def test_identify_reaches_the_device_and_its_ack_is_listed(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    with Session(api.engine) as session:
        session.add(Device(id="pi-id", enrolled=True))
        session.commit()
    device, received = _listening("pi-id", mosquitto.port)
    with api.client("operator") as client:
        response = client.post(
            "/api/v1/commands",
            json={"device_id": "pi-id", "command": {"type": "identify", "seconds": 3}},
        )
        assert response.status_code == 202, response.text
        sent = response.json()
        assert sent["failed"] == [] and len(sent["commands"]) == 1
        command = sent["commands"][0]
        assert command["status"] == "sent" and command["created_by"] == "operator-1"
        assert wait_until(lambda: bool(received), 5)
        envelope = parse_message(*received[0])
        assert envelope.body.command.command_id == command["id"]
        assert envelope.body.command.seconds == 3
        device.publish_body(AckBody(command_id=command["id"], status=AckStatus.OK))
        assert wait_until(lambda: service.stats.stored >= 1, 5)
        detail = client.get(f"/api/v1/commands/{command['id']}").json()
        assert detail["status"] == "ok"
        assert [a["status"] for a in detail["acks"]] == ["ok"]
        acks = client.get("/api/v1/acks", params={"device_id": "pi-id"}).json()
        assert acks["total"] == 1
    device.close()


def test_assign_to_a_class_sends_one_command_per_device_with_the_download_url(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker, tiny_gguf: Path
) -> None:
    api, _ = api_with_broker
    with Session(api.engine) as session:
        for device_id, cls in (("pi-a", "pi4-4gb"), ("pi-b", "pi4-4gb"), ("pc-c", "cheap-pc-8gb")):
            session.add(Device(id=device_id, device_class=cls, enrolled=True))
        session.commit()
    listeners = {d: _listening(d, mosquitto.port) for d in ("pi-a", "pi-b", "pc-c")}
    with api.client("operator") as client:
        upload = client.post(
            "/api/v1/models/upload", params={"model_id": "tiny"}, content=tiny_gguf.read_bytes()
        )
        assert upload.status_code == 201
        response = client.post(
            "/api/v1/commands",
            json={"device_class": "pi4-4gb", "command": {"type": "assign", "model_id": "tiny"}},
        )
        assert response.status_code == 202, response.text
        commands = response.json()["commands"]
        assert sorted(c["device_id"] for c in commands) == ["pi-a", "pi-b"]
        assert len({c["id"] for c in commands}) == 2
        missing = client.post(
            "/api/v1/commands",
            json={"device_id": "pi-a", "command": {"type": "assign", "model_id": "nope"}},
        )
        assert missing.status_code == 404
        both = client.post(
            "/api/v1/commands",
            json={"device_id": "pi-a", "device_class": "x", "command": {"type": "identify"}},
        )
        assert both.status_code == 422
    for device_id in ("pi-a", "pi-b"):
        device, received = listeners[device_id]
        assert wait_until(lambda r=received: bool(r), 5)
        assign = parse_message(*received[0]).body.command
        assert assign.sha256 == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
        assert assign.url == f"{api.url}/api/v1/models/tiny/file"
    assert listeners["pc-c"][1] == []
    for device, _ in listeners.values():
        device.close()


def test_bench_commands_carry_the_reference_and_a_registry_source_per_named_model(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker, tiny_gguf: Path
) -> None:
    api, _ = api_with_broker
    with Session(api.engine) as session:
        session.add(Device(id="pi-bench", enrolled=True))
        session.commit()
    device, received = _listening("pi-bench", mosquitto.port)
    bench = {"type": "bench", "model_ids": ["tiny", "only-on-device"], "max_questions": 1}
    with api.client("operator") as client:
        upload = client.post(
            "/api/v1/models/upload", params={"model_id": "tiny"}, content=tiny_gguf.read_bytes()
        )
        assert upload.status_code == 201
        lonely = client.post(
            "/api/v1/commands",
            json={"device_id": "pi-bench", "command": {**bench, "reference_model_id": "tiny"}},
        )
        assert lonely.status_code == 422 and "needs judge_model_id" in lonely.text
        graded = {**bench, "judge_model_id": "tiny", "reference_model_id": "tiny"}
        response = client.post(
            "/api/v1/commands", json={"device_id": "pi-bench", "command": graded}
        )
        assert response.status_code == 202, response.text
    assert wait_until(lambda: bool(received), 5)
    command = parse_message(*received[0]).body.command
    assert (command.judge_model_id, command.reference_model_id) == ("tiny", "tiny")
    # the registry knows "tiny" only; the device may hold the other one (it says so if not)
    assert [(s.model_id, s.url) for s in command.sources] == [
        ("tiny", f"{api.url}/api/v1/models/tiny/file")
    ]
    assert command.sources[0].sha256 == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert command.sources[0].size_bytes == tiny_gguf.stat().st_size
    device.close()


def test_bench_without_a_broker_is_a_clear_503(api: Api) -> None:
    with Session(api.engine) as session:
        session.add(Device(id="pi-x"))
        session.commit()
    with api.client("operator") as client:
        response = client.post(
            "/api/v1/commands", json={"device_id": "pi-x", "command": {"type": "bench"}}
        )
    assert response.status_code == 503
    assert response.json()["error"] == "no_broker"


def test_enrollment_token_is_exchanged_once_for_a_login(api: Api) -> None:
    with api.client("operator") as client:
        issued = client.post(
            "/api/v1/enrollment-tokens", json={"device_id": "pi-new", "device_class": "pi5-8gb"}
        ).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    with api.client(None, headers=headers) as device:
        first = device.post("/api/v1/enroll", json={"device_id": "pi-new"})
        assert first.status_code == 201, first.text
        assert first.json()["device"]["device_class"] == "pi5-8gb"
        assert first.json()["credentials"]["username"] == "pi-new"
        again = device.post("/api/v1/enroll", json={"device_id": "pi-new"})
        assert again.status_code == 403 and again.json()["error"] == "enrollment_refused"
    with api.client("admin") as admin:  # an API token is not an enrollment token
        assert admin.post("/api/v1/enroll", json={"device_id": "pi-y"}).status_code == 403


def test_deleting_a_device_revokes_its_login(api: Api) -> None:
    from controller import crud

    with api.client("operator") as client:
        creds = client.post("/api/v1/devices", json={"id": "pi-gone"}).json()["credentials"]
        assert creds["username"] == "pi-gone"
        with Session(api.engine) as session:
            assert crud.active_mqtt_credential(session, device_id="pi-gone") is not None
        assert client.delete("/api/v1/devices/pi-gone").status_code == 204
        assert client.get("/api/v1/devices/pi-gone").status_code == 404
        assert client.delete("/api/v1/devices/pi-gone").status_code == 404
    with Session(api.engine) as session:
        assert crud.active_mqtt_credential(session, device_id="pi-gone") is None


def test_bench_commands_name_their_suite_by_id_and_sha256(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, _ = api_with_broker
    with Session(api.engine) as session:
        session.add(Device(id="pi-suite", enrolled=True))
        session.commit()
    device, received = _listening("pi-suite", mosquitto.port)
    mine = builtin_bytes("gsm8k-sample")
    with api.client("operator") as client:
        uploaded = client.post("/api/v1/suites", params={"suite_id": "school"}, content=mine)
        assert uploaded.status_code == 201, uploaded.text
        for suite_id in ("school", "everyday-choice"):
            command = {"type": "bench", "suite_id": suite_id, "max_questions": 2}
            sent = client.post(
                "/api/v1/commands", json={"device_id": "pi-suite", "command": command}
            )
            assert sent.status_code == 202, sent.text
        missing = {"type": "bench", "suite_id": "nope"}
        refused = client.post(
            "/api/v1/commands", json={"device_id": "pi-suite", "command": missing}
        )
        assert refused.status_code == 404 and "suite 'nope'" in refused.text
    assert wait_until(lambda: len(received) == 2, 5)
    uploaded_suite, builtin = (parse_message(*m).body.command.suite for m in received)
    assert uploaded_suite.suite_id == "school"
    assert uploaded_suite.sha256 == hashlib.sha256(mine).hexdigest()
    assert uploaded_suite.url == f"{api.url}/api/v1/suites/school/file"
    assert builtin == builtin_source("everyday-choice") and builtin.url is None
    device.close()
