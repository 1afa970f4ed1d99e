"""Ingest through real Mosquitto into SQLite (and PostgreSQL): kinds, idempotency, dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from controller.ingest.service import IngestService
from controller.models import (
    BenchmarkQuestion,
    BenchmarkResult,
    BenchmarkRun,
    Command,
    CommandAck,
    DeadLetter,
    DeadLetterCount,
    Device,
    DeviceState,
    Heartbeat,
    IngestedMessage,
    ServingMetric,
)
from controller.planner.types import BenchRun
from controller.plans.inputs import load_inputs
from shared.messages import (
    AckBody,
    AckStatus,
    AnswerLatency,
    DeviceStatus,
    HeartbeatBody,
    ModelRef,
    StateBody,
    StoredBody,
    encode,
    make_envelope,
    parse_message,
    seq_ranges,
)
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import EXAMPLE_BODIES, bench_body
from tests.support.broker import MosquittoBroker

AGENT_KINDS = [k for k in TopicKind if k.ingested]


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one()[0])  # type: ignore[call-overload]


def test_every_agent_message_kind_is_stored(
    engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(engine, mosquitto, client_id=f"every-kind-{engine.dialect.name}")
    device = FakeDevice("pi-every", mosquitto.port)
    for kind in AGENT_KINDS:
        device.publish_body(EXAMPLE_BODIES[kind]).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= len(AGENT_KINDS))
    device.close()

    assert service.stats.stored == len(AGENT_KINDS)
    assert not service.stats.dead_letters
    with Session(engine) as session:
        row = session.get(Device, "pi-every")
        assert row is not None and not row.enrolled
        assert row.agent_version == "0.1.0" and row.cores == 4 and row.device_class == "pi4-4gb"
        assert row.status == "online" and row.model_id == "smollm2" and row.refine is True
        assert row.last_heartbeat is not None and row.last_heartbeat["outbox_depth"] == 3
        assert row.last_seq == len(AGENT_KINDS) and row.last_seen_at is not None
        run = session.exec(select(BenchmarkRun)).one()[0]  # type: ignore[call-overload]
        assert (run.model_id, run.decode_tok_s, run.peak_rss_mb) == ("smollm2", 40.0, 215.0)
        assert run.zero_shot_e2e_ms_p95 == 4200 and run.refined_e2e_ms_p95 is None
        result = session.exec(select(BenchmarkResult)).one()[0]  # type: ignore[call-overload]
        assert (result.category, result.refined, result.judge_mean) == ("math", False, 5.5)
        assert result.e2e_ms_p95 == 4200 and result.device_class == "pi4-4gb"
        question = session.exec(select(BenchmarkQuestion)).one()[0]  # type: ignore[call-overload]
        assert question.item_id == "math-1" and question.correct is True
        metric = session.exec(select(ServingMetric)).one()[0]  # type: ignore[call-overload]
        assert metric.requests == 3 and metric.latency_ms_p95 == 4100
    for model in (Heartbeat, DeviceState, CommandAck):
        assert count(engine, model) == 1
    assert count(engine, IngestedMessage) == len(AGENT_KINDS)


def test_a_stored_bench_reads_back_as_the_planners_run_field_for_field(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    """Ingest's rows and the planner's reading of them are one codec: nothing is lost between."""
    refined = AnswerLatency(
        ttft_ms_p50=90, ttft_ms_p95=130, e2e_ms_p50=9000, e2e_ms_p95=11000,
        generated_tokens_mean=210, n=9,
    )  # fmt: skip
    body = bench_body().model_copy(update={"refined": refined, "contended": True})
    service = ingest_factory(sqlite_engine, mosquitto, client_id="bench-codec")
    device = FakeDevice("pi-codec", mosquitto.port)
    device.publish_body(body).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= 1)
    device.close()
    with Session(sqlite_engine) as session:
        runs = load_inputs(session).runs
    assert body.prefill_tok_s and body.decode_tok_s and body.zero_shot
    assert runs == [
        BenchRun(
            model_id=body.model.model_id,
            device_class=body.device_class,
            peak_rss_mb=body.peak_rss_mb,
            prefill_tok_s=body.prefill_tok_s.mean,
            decode_tok_s=body.decode_tok_s.mean,
            zero_shot=body.zero_shot,
            refined=refined,
            # an older agent's row is stored with the strategy its flag meant
            questions=tuple(q.model_copy(update={"strategy": q.served_by}) for q in body.questions),
            contended=True,
        )
    ]


def test_redelivered_messages_are_stored_once(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="redelivery")
    device = FakeDevice("pi-redeliver", mosquitto.port)
    body = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=100)
    for seq in (1, 2, 3):
        payload = encode(make_envelope("pi-redeliver", seq, body))
        for _ in range(3):  # the same bytes again, as a QoS 1 redelivery would be
            device.publish_raw(TopicKind.HEARTBEAT, payload).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= 9)
    device.close()
    assert service.stats.stored == 3
    assert service.stats.duplicates == 6
    assert count(sqlite_engine, Heartbeat) == 3


def test_reused_seq_with_other_content_is_dead_lettered_not_dropped(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="seq-reuse")
    device = FakeDevice("pi-reuse", mosquitto.port)
    device.publish_body(HeartbeatBody(uptime_s=1, load_1m=0, mem_available_mb=1), seq=7)
    device.publish_body(StateBody(status=DeviceStatus.ONLINE), seq=7).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= 2)
    device.close()
    assert service.stats.stored == 1
    assert service.stats.dead_letters == {"seq_conflict": 1}
    with Session(sqlite_engine) as session:
        letter = session.exec(select(DeadLetter)).one()[0]  # type: ignore[call-overload]
        assert letter.device_id == "pi-reuse" and "already used" in letter.detail


def test_ack_moves_the_command_to_its_final_status(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    with Session(sqlite_engine) as session:
        session.add(Device(id="pi-ack", enrolled=True))
        session.flush()
        session.add(Command(id="c-9", device_id="pi-ack", type="identify", status="sent"))
        session.commit()
    service = ingest_factory(sqlite_engine, mosquitto, client_id="acks")
    device = FakeDevice("pi-ack", mosquitto.port)
    device.publish_body(AckBody(command_id="c-9", status=AckStatus.ACCEPTED))
    device.publish_body(AckBody(command_id="c-9", status=AckStatus.OK))
    # an older "accepted" replayed later must not undo "ok"
    device.publish_body(AckBody(command_id="c-9", status=AckStatus.ACCEPTED), seq=100)
    assert wait_until(lambda: service.stats.handled >= 3)
    device.close()
    with Session(sqlite_engine) as session:
        command = session.get(Command, "c-9")
        assert command is not None and command.status == "ok" and command.acked_at is not None
    assert count(sqlite_engine, CommandAck) == 3


def _bad_messages(device: FakeDevice) -> dict[str, tuple[TopicKind | str, bytes, str | None]]:
    good = encode(make_envelope("pi-bad", 1, EXAMPLE_BODIES[TopicKind.HEARTBEAT]))
    other = encode(make_envelope("pi-other", 2, EXAMPLE_BODIES[TopicKind.HEARTBEAT]))
    wrong_version = good.replace(b'"heartbeat/2"', b'"heartbeat/9"')
    bad_body = good.replace(b'"load_1m":0.4', b'"load_1m":-1')
    return {
        "bad_json": (TopicKind.HEARTBEAT, b"{not json", None),
        "oversized": (TopicKind.HEARTBEAT, b" " * 1_048_577, None),
        "bad_schema": (TopicKind.HEARTBEAT, bad_body, None),
        "wrong_kind": (TopicKind.METRICS, good, None),
        "unsupported_version": (TopicKind.HEARTBEAT, wrong_version, None),
        "device_mismatch": (TopicKind.HEARTBEAT, other, None),
    }


def test_each_kind_of_bad_message_is_dead_lettered_with_its_reason(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="bad")
    device = FakeDevice("pi-bad", mosquitto.port)
    cases = _bad_messages(device)
    for kind, payload, other_device in cases.values():
        device.publish_raw(kind, payload, device_id=other_device).wait_for_publish(5)
    # bad_topic: a topic under the prefix that is not the grammar (subscribed via "+")
    device.client.publish("edgefleet/v1/devices/UPPER/heartbeat", b"{}", qos=1).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= len(cases) + 1)
    device.close()
    expected = dict.fromkeys([*cases, "bad_topic"], 1)
    assert dict(service.stats.dead_letters) == expected
    assert service.stats.stored == 0
    with Session(sqlite_engine) as session:
        counts = {c.reason: c.count for c in session.exec(select(DeadLetterCount)).scalars()}  # type: ignore[call-overload]
        assert counts == expected
        letters = session.exec(select(DeadLetter)).scalars().all()  # type: ignore[call-overload]
        oversized = next(x for x in letters if x.reason == "oversized")
        assert oversized.payload_size == 1_048_577 and len(oversized.payload) == 4096
        assert all(x.detail for x in letters)
        assert {x.device_id for x in letters if x.reason != "bad_topic"} == {"pi-bad"}


def test_two_replicas_in_a_shared_subscription_split_ingest(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    replicas = [
        ingest_factory(sqlite_engine, mosquitto, client_id=f"replica-{i}", share_group="ingest")
        for i in range(2)
    ]
    device = FakeDevice("pi-shared", mosquitto.port)
    body = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=100)
    for info in [device.publish_body(body) for _ in range(200)]:
        info.wait_for_publish(5)
    assert wait_until(lambda: sum(r.stats.handled for r in replicas) >= 200)
    device.close()
    assert [r.stats.stored > 0 for r in replicas] == [True, True]  # both took a share
    assert sum(r.stats.stored for r in replicas) == 200  # and no message went to both
    assert count(sqlite_engine, Heartbeat) == 200


def test_every_settled_seq_is_confirmed_to_its_device_only(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    """End-to-end acks: stored, duplicate and dead-lettered seqs are all named on the device's
    ``stored`` topic (so its outbox forgets them); another device's seqs are not."""
    service = ingest_factory(sqlite_engine, mosquitto, client_id="confirmations")
    listener = FakeDevice("pi-listen", mosquitto.port)
    notices: list[tuple[str, StoredBody]] = []
    listener.client.on_message = lambda _c, _u, message: notices.append(
        (message.topic, parse_message(message.topic, message.payload).body)
    )
    listener.client.subscribe(Topics().subscription(TopicKind.STORED), qos=0)
    time.sleep(0.5)  # the SUBACK; Mosquitto on loopback answers in milliseconds
    device = FakeDevice("pi-confirm", mosquitto.port)
    other = FakeDevice("pi-other", mosquitto.port)
    heartbeat = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=10)
    payloads = [encode(make_envelope("pi-confirm", seq, heartbeat)) for seq in (1, 2, 3)]
    payloads.append(payloads[1])  # a resend of the same bytes: a duplicate
    infos = [device.publish_raw(TopicKind.HEARTBEAT, payload) for payload in payloads]
    bad = {"schema": "heartbeat/1", "device_id": "pi-confirm", "seq": 9, "sent_at": "x", "body": {}}
    infos.append(device.publish_raw(TopicKind.HEARTBEAT, json.dumps(bad).encode()))
    infos.append(other.publish_body(heartbeat, seq=5))
    assert device.wait_acked(infos[:5]) and other.wait_acked(infos[5:])
    assert wait_until(lambda: service.stats.handled >= 6)

    def confirmed(device_id: str) -> set[int]:
        topic = Topics().device(device_id, TopicKind.STORED)
        return {
            seq
            for notice_topic, body in list(notices)
            if notice_topic == topic
            for first, last in body.seqs
            for seq in range(first, last + 1)
        }

    assert wait_until(lambda: confirmed("pi-confirm") == {1, 2, 3, 9})
    assert confirmed("pi-other") == {5}
    assert service.stats.duplicates == 1 and service.stats.dead_letters["bad_schema"] == 1
    for client in (device, other, listener):
        client.close()


def test_seqs_fold_into_ranges() -> None:
    assert seq_ranges([5, 1, 2, 3, 9, 3, 10]) == [(1, 3), (5, 5), (9, 10)]
    assert seq_ranges([]) == []


def test_a_bench_with_a_judge_and_mixed_item_types_marks_only_judged_items_graded(
    sqlite_engine: Engine, mosquitto: MosquittoBroker, ingest_factory: Callable[..., IngestService]
) -> None:
    judged = bench_body().questions[0].model_copy(update={"item_id": "j1", "type": "judged"})
    exact = judged.model_copy(update={"item_id": "e1", "type": "exact", "judge_score": None})
    judge = ModelRef(model_id="gemma-judge", sha256="cd" * 32)
    body = bench_body().model_copy(update={"judge": judge, "questions": [judged, exact]})
    service = ingest_factory(sqlite_engine, mosquitto, client_id="graded-by")
    device = FakeDevice("pi-graded", mosquitto.port)
    device.publish_body(body).wait_for_publish(5)
    assert wait_until(lambda: service.stats.handled >= 1)
    device.close()
    assert service.stats.stored == 1 and not service.stats.dead_letters
    with Session(sqlite_engine) as session:
        rows = {q.item_id: q for (q,) in session.exec(select(BenchmarkQuestion)).all()}  # type: ignore[call-overload]
    assert (rows["j1"].judge_model_id, rows["j1"].judge_sha256) == ("gemma-judge", "cd" * 32)
    assert (rows["e1"].judge_model_id, rows["e1"].judge_sha256) == (None, None)
