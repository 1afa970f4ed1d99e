"""Agents from before strategies (schema 1, a refine flag only) keep working with this one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from controller.models import BenchmarkQuestion, BenchmarkResult, Device
from controller.planner.types import Option
from controller.plans.inputs import load_inputs
from shared.messages import (
    AssignCommand,
    DeviceStatus,
    StateBody,
    parse_message,
)
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES, SHA, bench_body
from tests.support.broker import MosquittoBroker


def _listening(device_id: str, port: int) -> tuple[FakeDevice, list[tuple[str, bytes]]]:
    device = FakeDevice(device_id, port)
    received: list[tuple[str, bytes]] = []
    device.client.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    device.client.subscribe(Topics().device(device_id, TopicKind.CMD), qos=1)
    return device, received


def _old_bench() -> Any:
    """A bench as an agent from before strategies sent it: refined rows, no strategy names."""
    body = bench_body()
    refined_row = body.questions[0].model_copy(update={"refined": True, "judge_score": 7.0})
    refined_cat = body.categories[0].model_copy(update={"refined": True})
    return body.model_copy(
        update={
            "questions": [*body.questions, refined_row],
            "categories": [*body.categories, refined_cat],
        }
    )


def test_a_schema_1_agent_is_read_by_its_refine_flag_and_sent_commands_it_accepts(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="old-agents")
    old, old_cmds = _listening("pi-old", mosquitto.port)
    new, new_cmds = _listening("pi-new", mosquitto.port)
    wait_until(lambda: False, 0.3)  # the subscriptions settle
    for body in (
        EXAMPLE_BODIES[TopicKind.HELLO],
        StateBody(status=DeviceStatus.ONLINE, model_id="smollm2", refine=True),
        _old_bench(),
    ):
        old.publish_body(body, version=1).wait_for_publish(5)
    new.publish_body(EXAMPLE_BODIES[TopicKind.HELLO]).wait_for_publish(5)
    assert wait_until(lambda: service.stats.stored >= 4)
    assert not service.stats.dead_letters

    with Session(sqlite_engine) as session:
        device = session.get(Device, "pi-old")
        assert device is not None and device.schema_version == 1
        assert device.strategy == "refine:1"
        questions = session.exec(select(BenchmarkQuestion)).all()
        assert sorted((q.refined, q.strategy) for q in questions) == [
            (False, "direct"),
            (True, "refine:1"),
        ]
        results = session.exec(select(BenchmarkResult)).all()
        assert {r.strategy for r in results} == {"direct", "refine:1"}
        inputs = load_inputs(session)
    [current] = [d.current for d in inputs.devices if d.device_id == "pi-old"]
    assert current == Option("smollm2", "refine:1")
    [run] = inputs.runs
    assert {q.served_by for q in run.questions} == {"direct", "refine:1"}

    sender = CommandPublisher(sqlite_engine, service.connection, topics=Topics())
    for device_id in ("pi-old", "pi-new"):
        command = AssignCommand(
            command_id=f"as-{device_id}", model_id="smollm2", sha256=SHA, url="http://c/m",
            size_bytes=1, refine=True, strategy="refine:1",
        )  # fmt: skip
        sender.send(device_id=device_id, command=command)
    assert wait_until(lambda: old_cmds and new_cmds)
    for received, version in ((old_cmds, "1"), (new_cmds, "2")):
        topic, payload = received[0]
        assert json.loads(payload)["schema"] == f"cmd/{version}"
        command = parse_message(topic, payload).body.command
        assert command.served_strategy().name == "refine:1"
    # what an agent that never heard of strategies reads: the flag alone
    flag_only = json.loads(old_cmds[0][1])["body"]["command"]
    flag_only.pop("strategy")
    assert AssignCommand.model_validate(flag_only).served_strategy().name == "refine:1"
    old.close()
    new.close()
