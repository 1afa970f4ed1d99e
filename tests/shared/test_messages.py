import json
import queue
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.messages import (
    MAX_ANSWER_CHARS,
    MAX_GRADE_TASKS,
    MAX_GRADED_TEXT_CHARS,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    BenchBody,
    BenchCommand,
    CmdBody,
    Envelope,
    JudgeCommand,
    JudgeResult,
    MessageRejected,
    RejectReason,
    encode,
    make_envelope,
    parse_message,
)
from shared.topics import TopicKind, Topics
from tests.factories.messages import EXAMPLE_BODIES
from tests.support.broker import MosquittoBroker

TOPICS = Topics()
ENVELOPED = [k for k in TopicKind if k.enveloped]


def _payload(kind: TopicKind, device_id: str = "pi-1", seq: int = 1) -> bytes:
    """A valid payload of ``kind`` from ``device_id``."""
    return encode(make_envelope(device_id, seq, EXAMPLE_BODIES[kind]))


@pytest.mark.parametrize("kind", ENVELOPED)
def test_every_kind_round_trips_locally(kind: TopicKind) -> None:
    envelope = parse_message(TOPICS.device("pi-1", kind), _payload(kind))
    assert envelope.kind is kind
    assert envelope.body == EXAMPLE_BODIES[kind]
    assert json.loads(_payload(kind))["schema"] == f"{kind.value}/{SCHEMA_VERSION}"


def test_every_kind_crosses_a_real_mosquitto_and_validates(mosquitto: MosquittoBroker) -> None:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = queue.Queue[int]()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-roundtrip")
    client.on_message = lambda _c, _u, msg: received.put(msg)
    client.on_subscribe = lambda *_args: subscribed.put(1)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        # A device id of its own: the session broker keeps other tests' retained messages.
        client.subscribe(TOPICS.device_namespace("roundtrip-1"), qos=1)
        subscribed.get(timeout=5)
        for seq, kind in enumerate(ENVELOPED):
            client.publish(
                TOPICS.device("roundtrip-1", kind), _payload(kind, "roundtrip-1", seq), qos=1
            ).wait_for_publish(5)
        got = {}
        for _ in ENVELOPED:
            msg = received.get(timeout=5)
            envelope = parse_message(msg.topic, msg.payload)
            got[envelope.kind] = envelope
    finally:
        client.loop_stop()
        client.disconnect()
    assert set(got) == set(ENVELOPED)
    assert all(got[kind].body == EXAMPLE_BODIES[kind] for kind in ENVELOPED)


def _rejection(topic: str, payload: bytes, **kwargs: str) -> MessageRejected:
    with pytest.raises(MessageRejected) as info:
        parse_message(topic, payload, **kwargs)
    return info.value


def test_malformed_payloads_are_rejected_with_a_reason() -> None:
    hb = TOPICS.device("pi-1", TopicKind.HEARTBEAT)
    good = json.loads(_payload(TopicKind.HEARTBEAT))
    cases = {
        RejectReason.BAD_JSON: (hb, b"{not json"),
        RejectReason.OVERSIZED: (hb, b" " * (MAX_PAYLOAD_BYTES + 1)),
        RejectReason.BAD_TOPIC: ("edgefleet/v1/devices/pi-1/nope", _payload(TopicKind.HEARTBEAT)),
        RejectReason.WRONG_KIND: (hb, _payload(TopicKind.STATE)),
        RejectReason.UNSUPPORTED_VERSION: (
            hb,
            json.dumps({**good, "schema": "heartbeat/99"}).encode(),
        ),
        RejectReason.BAD_SCHEMA: (hb, json.dumps({**good, "body": {"uptime_s": -1}}).encode()),
        RejectReason.DEVICE_MISMATCH: (
            TOPICS.device("pi-2", TopicKind.HEARTBEAT),
            _payload(TopicKind.HEARTBEAT),
        ),
    }
    for reason, (topic, payload) in cases.items():
        rejected = _rejection(topic, payload)
        assert rejected.reason is reason, rejected
        assert rejected.detail


def test_bad_schema_reason_names_the_field() -> None:
    good = json.loads(_payload(TopicKind.HEARTBEAT))
    payload = json.dumps({**good, "body": {**good["body"], "load_1m": "high"}}).encode()
    rejected = _rejection(TOPICS.device("pi-1", TopicKind.HEARTBEAT), payload)
    assert "body.load_1m" in rejected.detail


def test_credential_must_match_the_envelope() -> None:
    rejected = _rejection(
        TOPICS.device("pi-1", TopicKind.STATE), _payload(TopicKind.STATE), authenticated_as="pi-9"
    )
    assert rejected.reason is RejectReason.DEVICE_MISMATCH
    assert "credential" in rejected.detail


def test_inbound_bodies_tolerate_unknown_fields_but_the_envelope_does_not() -> None:
    good = json.loads(_payload(TopicKind.HEARTBEAT))
    newer = {**good, "body": {**good["body"], "gpu_temp": 50}}
    topic = TOPICS.device("pi-1", TopicKind.HEARTBEAT)
    assert parse_message(topic, json.dumps(newer).encode()).body.load_1m == good["body"]["load_1m"]
    assert (
        _rejection(topic, json.dumps({**good, "extra": 1}).encode()).reason
        is RejectReason.BAD_SCHEMA
    )


def test_envelope_requires_a_timezone_aware_timestamp() -> None:
    good = json.loads(_payload(TopicKind.HEARTBEAT))
    naive = {**good, "sent_at": datetime(2026, 1, 1).isoformat()}
    assert _rejection(
        TOPICS.device("pi-1", TopicKind.HEARTBEAT), json.dumps(naive).encode()
    ).reason is (RejectReason.BAD_SCHEMA)


def test_command_union_is_discriminated_by_type() -> None:
    payload = json.loads(_payload(TopicKind.CMD))
    payload["body"]["command"] = {"type": "identify", "command_id": "c-9", "seconds": 3}
    envelope = parse_message(TOPICS.device("pi-1", TopicKind.CMD), json.dumps(payload).encode())
    assert isinstance(envelope.body, CmdBody)
    assert envelope.body.command.type == "identify"
    payload["body"]["command"] = {"type": "reboot", "command_id": "c-9"}
    assert _rejection(
        TOPICS.device("pi-1", TopicKind.CMD), json.dumps(payload).encode()
    ).reason is (RejectReason.BAD_SCHEMA)


def test_bench_command_reference_and_sources_are_optional_and_read_at_cmd_1() -> None:
    topic = TOPICS.device("pi-1", TopicKind.CMD)
    payload = json.loads(_payload(TopicKind.CMD))
    # as an older controller sends it: schema 1, no reference, no sources, no strategies
    payload["schema"] = "cmd/1"
    payload["body"]["command"] = {"type": "bench", "command_id": "b-1", "model_ids": ["m"]}
    old = parse_message(topic, json.dumps(payload).encode()).body.command
    assert isinstance(old, BenchCommand)
    assert old.reference_model_id is None and old.sources == [] and old.source("m") is None
    assert [s.name for s in old.strategy_list()] == ["direct", "refine:1"]
    source = {"model_id": "ref", "sha256": "a" * 64, "url": "http://c/ref", "size_bytes": 5}
    payload["body"]["command"].update(reference_model_id="ref", sources=[source])
    new = parse_message(topic, json.dumps(payload).encode()).body.command
    assert new.reference_model_id == "ref" and new.source("ref").size_bytes == 5
    payload["body"]["command"]["sources"] = [{**source, "sha256": "not-a-hash"}]
    assert _rejection(topic, json.dumps(payload).encode()).reason is RejectReason.BAD_SCHEMA


def test_make_envelope_refuses_non_bodies() -> None:
    with pytest.raises(TypeError):
        make_envelope("pi-1", 1, object())  # type: ignore[arg-type]


def test_bench_body_json_schema_is_exported_for_operators() -> None:
    schema = BenchBody.model_json_schema()
    assert {"model", "peak_rss_mb", "categories", "questions"} <= set(schema["properties"])


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_anything_but_a_rejection(payload: bytes) -> None:
    try:
        envelope = parse_message(TOPICS.device("pi-1", TopicKind.METRICS), payload)
    except MessageRejected as exc:
        assert exc.reason in RejectReason
    else:
        assert isinstance(envelope, Envelope)


@given(
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=6
    )
)
def test_arbitrary_json_objects_are_stored_or_rejected(body: dict[str, object]) -> None:
    payload = {
        "schema": "metrics/1",
        "device_id": "pi-1",
        "seq": 1,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    try:
        parse_message(
            TOPICS.device("pi-1", TopicKind.METRICS), json.dumps({**payload, "body": body}).encode()
        )
    except MessageRejected as exc:
        assert exc.reason is RejectReason.BAD_SCHEMA


def _judge_command(
    tasks: int, *, question: str = "Name a fruit.", answer: str = "An apple."
) -> dict[str, object]:
    task = {"run_pk": 1, "item_id": "j1", "target": "answer", "row_id": 7, "question": question}
    return {
        "type": "judge",
        "command_id": "judge-1",
        "judge_model_id": "gemma",
        "tasks": [{**task, "reference": question, "answer": answer}] * tasks,
    }


def test_a_judge_command_at_its_bounds_fits_one_payload_and_beyond_them_is_refused() -> None:
    longest = "q" * MAX_GRADED_TEXT_CHARS
    worst = _judge_command(MAX_GRADE_TASKS, question=longest, answer="a" * MAX_ANSWER_CHARS)
    command = CmdBody.model_validate({"command": worst})
    payload = encode(make_envelope("pi-1", 1, command))
    assert len(payload) < MAX_PAYLOAD_BYTES
    parsed = parse_message(TOPICS.device("pi-1", TopicKind.CMD), payload)
    assert isinstance(parsed.body.command, JudgeCommand)
    for bad in (
        _judge_command(MAX_GRADE_TASKS + 1),
        _judge_command(0),
        _judge_command(1, question=longest + "q"),
        _judge_command(1, answer="a" * (MAX_ANSWER_CHARS + 1)),
    ):
        with pytest.raises(ValidationError):
            CmdBody.model_validate({"command": bad})


def test_a_judge_result_holds_ratings_or_missing_never_out_of_range() -> None:
    judge = {"model_id": "gemma", "sha256": "ab" * 32}
    assert JudgeResult.model_validate({"judge": judge, "scores": [7.5, None]}).scores == [7.5, None]
    for bad in ([0.0], [11.0], [5.0] * (MAX_GRADE_TASKS + 1)):
        with pytest.raises(ValidationError):
            JudgeResult.model_validate({"judge": judge, "scores": bad})
