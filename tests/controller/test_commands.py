"""Commands: recorded, published to the device's cmd topic through Mosquitto, moved on by acks."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controller import crud
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from controller.models import Command, Device
from shared.messages import AckBody, AckStatus, IdentifyCommand, parse_message
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker


def test_command_round_trip_to_device_and_back(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    with Session(sqlite_engine) as session:
        session.add(Device(id="pi-cmd", enrolled=True))
        session.commit()
    service = ingest_factory(sqlite_engine, mosquitto, client_id="cmd-ctl")
    publisher = CommandPublisher(sqlite_engine, service.connection, topics=Topics())
    device = FakeDevice("pi-cmd", mosquitto.port)
    received: list[tuple[str, bytes]] = []
    device.client.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    device.client.subscribe(Topics().device("pi-cmd", TopicKind.CMD), qos=1)
    wait_until(lambda: False, 0.3)  # let the subscription settle

    sent = publisher.send(
        device_id="pi-cmd", command=IdentifyCommand(command_id="id-1"), created_by="tester"
    )
    assert sent.status == "sent" and sent.seq == 1 and sent.sent_at is not None
    assert wait_until(lambda: bool(received), 5)
    envelope = parse_message(*received[0])
    assert envelope.device_id == "pi-cmd" and envelope.seq == 1
    assert envelope.body.command.command_id == "id-1"
    assert json.loads(received[0][1])["body"]["command"]["type"] == "identify"

    device.publish_body(AckBody(command_id="id-1", status=AckStatus.OK))
    assert wait_until(lambda: service.stats.stored >= 1)
    device.close()
    with Session(sqlite_engine) as session:
        row = session.get(Command, "id-1")
        assert row is not None and row.status == "ok" and row.created_by == "tester"
        second = publisher.send(device_id="pi-cmd", command=IdentifyCommand(command_id="id-2"))
        assert second.seq == 2  # the cmd topic's seq rises per device
        assert [c.id for c in session.exec(crud.commands_query(device_id="pi-cmd"))] == [
            "id-2",
            "id-1",
        ]


def test_command_to_unknown_device_or_reused_id_is_refused(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="cmd-refuse")
    publisher = CommandPublisher(sqlite_engine, service.connection, topics=Topics())
    with pytest.raises(LookupError):
        publisher.send(device_id="nobody", command=IdentifyCommand(command_id="x-1"))
    with Session(sqlite_engine) as session:
        session.add(Device(id="pi-once", enrolled=True))
        session.commit()
    publisher.send(device_id="pi-once", command=IdentifyCommand(command_id="x-2"))
    with pytest.raises(ValueError, match="already used"):
        publisher.send(device_id="pi-once", command=IdentifyCommand(command_id="x-2"))
