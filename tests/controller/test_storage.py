"""Storage on SQLite and a real PostgreSQL: migrations, the ingest writer, crud, enrollment."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, SQLModel

from controller import crud
from controller.core.config import ControllerSettings
from controller.core.db import migrate
from controller.enrollment import DeviceIdTaken, Enrollment, EnrollmentError
from controller.ingest.mqtt import Received
from controller.ingest.store import IngestStore
from controller.models import (
    BenchmarkQuestion,
    Device,
    DeviceCreate,
    DeviceUpdate,
    EnrollmentToken,
    Heartbeat,
    IngestedMessage,
    MqttCredential,
    ServingMetric,
)
from shared.messages import Body, HeartbeatBody, MetricsBody, encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.factories.messages import EXAMPLE_BODIES

CLASSES_DIR = Path(__file__).resolve().parents[2] / "firmware-config" / "classes"
SENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def received(device_id: str, seq: int, body: Body, *, sent_at: datetime = SENT) -> Received:
    envelope = make_envelope(device_id, seq, body, sent_at=sent_at)
    topic = Topics().device(device_id, envelope.kind)
    return Received(topic, encode(envelope), mid=seq, qos=1, retain=False, received_at=SENT)


def rows(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_migrations_create_exactly_the_models_and_rerun_cleanly(engine: Engine) -> None:
    migrate(engine)  # already at head: a no-op
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_store_writes_every_kind_with_aware_timestamps(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    kinds = [k for k in TopicKind if k.ingested]
    batch = [received("pi-s", seq, EXAMPLE_BODIES[k]) for seq, k in enumerate(kinds, 1)]
    outcome = store.write(batch)
    assert (outcome.stored, outcome.duplicates, dict(outcome.dead)) == (len(kinds), 0, {})
    again = store.write(batch)
    assert (again.stored, again.duplicates) == (0, len(kinds))
    with Session(engine) as session:
        device = session.get(Device, "pi-s")
        assert device is not None and device.hello_at == SENT and device.state_at == SENT
        assert device.last_seq == len(kinds)
        beat = session.exec(select(Heartbeat)).scalars().one()  # type: ignore[call-overload]
        assert beat.sent_at == SENT and beat.sent_at.tzinfo is not None
    assert rows(engine, BenchmarkQuestion) == 1


def test_last_will_marks_device_offline_though_stamped_at_connect(engine: Engine) -> None:
    from shared.messages import DeviceStatus, StateBody

    store = IngestStore(engine, topics=Topics())
    connected = SENT - timedelta(minutes=5)
    will = received("pi-o", 1, StateBody(status=DeviceStatus.OFFLINE), sent_at=connected)
    online = received("pi-o", 2, StateBody(status=DeviceStatus.ONLINE, model_id="m"))
    store.write([online])
    store.write([will])  # the broker publishes the will, built at connect time, when it drops
    with Session(engine) as session:
        device = session.get(Device, "pi-o")
        assert device is not None and device.status == "offline" and device.last_seq == 2


def test_older_heartbeat_does_not_overwrite_newer(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    body = HeartbeatBody(uptime_s=9, load_1m=0, mem_available_mb=1)
    store.write([received("pi-h", 2, body)])
    old = HeartbeatBody(uptime_s=1, load_1m=0, mem_available_mb=1)
    store.write([received("pi-h", 1, old, sent_at=SENT - timedelta(minutes=5))])
    with Session(engine) as session:
        device = session.get(Device, "pi-h")
        assert device is not None and device.last_heartbeat is not None
        assert device.last_heartbeat["uptime_s"] == 9 and device.last_heartbeat_at == SENT


def test_concurrent_writers_store_each_message_once(engine: Engine) -> None:
    # two controller replicas receiving the same redelivered batch
    batch = [
        received("pi-c", seq, HeartbeatBody(uptime_s=seq, load_1m=0, mem_available_mb=1))
        for seq in range(1, 201)
    ]
    stores = [IngestStore(engine, topics=Topics()) for _ in range(2)]
    outcomes = []

    def run(store: IngestStore) -> None:
        for chunk in range(0, 200, 20):
            outcomes.append(store.write(batch[chunk : chunk + 20]))

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(o.stored for o in outcomes) == 200
    assert sum(o.duplicates for o in outcomes) == 200
    assert rows(engine, Heartbeat) == 200


def test_value_the_database_refuses_dead_letters_only_its_message(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    hello = EXAMPLE_BODIES["hello"]
    huge = hello.model_copy(update={"hardware": hello.hardware.model_copy(update={"cores": 2**70})})
    batch = [received("pi-l", 1, huge), received("pi-l", 2, MetricsBody(window_s=1, model_id="m"))]
    outcome = store.write(batch)
    assert (outcome.stored, dict(outcome.dead)) == (1, {"store_error": 1})
    with Session(engine) as session:
        letter = session.exec(crud.dead_letters_query(reason="store_error")).first()
        assert letter is not None and letter.device_id == "pi-l"
    assert rows(engine, ServingMetric) == 1


def test_an_overlong_model_id_is_refused_before_the_database(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    body = MetricsBody(window_s=1, model_id="fine")
    payload = encode(make_envelope("pi-l", 1, body)).replace(b'"fine"', b'"' + b"m" * 300 + b'"')
    message = Received(
        Topics().device("pi-l", "metrics"), payload, mid=1, qos=1, retain=False, received_at=SENT
    )
    outcome = store.write([message, received("pi-l", 2, body)])
    assert (outcome.stored, dict(outcome.dead)) == (1, {"bad_schema": 1})


def test_device_classes_load_from_firmware_config(engine: Engine) -> None:
    with Session(engine) as session:
        loaded = crud.load_device_classes(session, directory=CLASSES_DIR)
        session.commit()
        names = [c.name for c in crud.list_device_classes(session)]
    assert len(loaded) == len(list(CLASSES_DIR.glob("*.yaml"))) and "pi4-4gb" in names
    with Session(engine) as session:
        pi4 = next(c for c in crud.list_device_classes(session) if c.name == "pi4-4gb")
        assert pi4.memory_budget_mb > 0 and pi4.profile["name"] == "pi4-4gb"


def test_enrolling_adopts_a_device_first_seen_on_mqtt(engine: Engine) -> None:
    IngestStore(engine, topics=Topics()).write([received("pi-e", 1, EXAMPLE_BODIES["hello"])])
    with Session(engine) as session:
        device = crud.create_device(session, device_in=DeviceCreate(id="pi-e", name="Lab Pi"))
        session.commit()
        assert device.enrolled and device.agent_version == "0.1.0" and device.name == "Lab Pi"
        crud.update_device(session, device=device, device_in=DeviceUpdate(location="shelf"))
        session.commit()
        assert [d.id for d in session.exec(crud.devices_query(device_class="pi4-4gb"))] == ["pi-e"]
        assert crud.next_cmd_seq(session, device_id="pi-e") == 1
        assert crud.next_cmd_seq(session, device_id="pi-e") == 2
        with pytest.raises(LookupError):
            crud.next_cmd_seq(session, device_id="nobody")


def test_enrollment_tokens_are_one_time_and_store_only_hashes(
    engine: Engine, tmp_path: Path
) -> None:
    settings = ControllerSettings(data_dir=tmp_path, dev_mode=True)
    enrollment = Enrollment(engine, settings)
    row, secret = enrollment.create_token(device_class="pi4-4gb")
    with Session(engine) as session:
        stored = session.exec(select(EnrollmentToken)).scalars().one()  # type: ignore[call-overload]
        assert secret not in stored.token_hash and stored.expires_at > datetime.now(UTC)
    device, creds = enrollment.redeem(secret, device_id="pi-t")
    assert device.device_class == "pi4-4gb" and creds.username == "pi-t"
    with pytest.raises(EnrollmentError, match="already used"):
        enrollment.redeem(secret, device_id="pi-t")
    with Session(engine) as session:
        cred = session.exec(select(MqttCredential)).scalars().one()  # type: ignore[call-overload]
        assert creds.password not in cred.password_hash and cred.password_hash.startswith("$7$")
    rotated = enrollment.rotate("pi-t")
    assert rotated.password != creds.password
    with Session(engine) as session:
        assert len(crud.active_mqtt_credentials(session)) == 1
    assert enrollment.revoke("pi-t") == 1
    with pytest.raises(EnrollmentError):
        enrollment.rotate("nobody")
    _, fixed = enrollment.create_token(device_id="pi-fixed")
    with pytest.raises(EnrollmentError, match="pi-fixed"):
        enrollment.redeem(fixed, device_id="pi-other")


def test_a_batch_is_enrolled_whole_with_one_broker_sync_or_not_at_all(
    engine: Engine, tmp_path: Path
) -> None:
    settings = ControllerSettings(data_dir=tmp_path, dev_mode=True, mqtt_password="ctl-secret")
    enrollment = Enrollment(engine, settings)
    batch = [DeviceCreate(id=f"pi-{i}", device_class="pi4-4gb") for i in range(3)]
    enrolled = enrollment.enroll_many(batch)
    assert [creds.username for _, creds in enrolled] == ["pi-0", "pi-1", "pi-2"]
    passwd = (settings.broker_dir / "passwd").read_text().splitlines()
    assert sorted(line.split(":")[0] for line in passwd) == ["pi-0", "pi-1", "pi-2"]
    with pytest.raises(EnrollmentError, match="pi-1"):
        enrollment.enroll_many([DeviceCreate(id="pi-9"), DeviceCreate(id="pi-1")])
    with Session(engine) as session:
        assert crud.get_device(session, device_id="pi-9") is None
        assert len(crud.active_mqtt_credentials(session)) == 3


def _scalar(engine: Engine, query: Any) -> int:
    """One value, read in its own transaction (pg_stat_activity is a snapshot per transaction)."""
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_two_batches_racing_for_the_same_ids_enroll_once_and_refuse_the_other(
    pg_engine: Engine, tmp_path: Path
) -> None:
    """Both pass the id check before either commits; the database refuses the second whole."""
    settings = ControllerSettings(data_dir=tmp_path, dev_mode=True, mqtt_password="ctl-secret")
    enrollment = Enrollment(pg_engine, settings)
    batch = [DeviceCreate(id=f"pi-{i}", device_class="pi4-4gb") for i in range(3)]
    outcomes: list[str] = []

    def enroll() -> None:
        try:
            enrollment.enroll_many(batch)
            outcomes.append("enrolled")
        except DeviceIdTaken:
            outcomes.append("taken")

    waiting_on_lock = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    with pg_engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE device IN SHARE ROW EXCLUSIVE MODE"))  # reads pass
        racers = [threading.Thread(target=enroll) for _ in range(2)]
        for racer in racers:
            racer.start()
        deadline = time.monotonic() + 60
        while _scalar(pg_engine, waiting_on_lock) < 2:  # both checked, both blocked
            assert time.monotonic() < deadline, "the two batches never reached their inserts"
            time.sleep(0.05)
        blocker.rollback()
    for racer in racers:
        racer.join(60)
    assert sorted(outcomes) == ["enrolled", "taken"]
    with Session(pg_engine) as session:
        assert len(crud.active_mqtt_credentials(session)) == 3


def test_a_bench_run_stored_twice_under_new_seqs_is_dead_lettered(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    bench = EXAMPLE_BODIES[TopicKind.BENCH]
    first = store.write([received("pi-b", 1, bench)])
    again = store.write([received("pi-b", 2, bench)])  # same run_id, not a redelivery
    assert first.stored == 1 and (again.stored, dict(again.dead)) == (0, {"duplicate_run": 1})
    assert rows(engine, BenchmarkQuestion) == 1


def test_old_ledger_entries_are_pruned_and_new_ones_kept(engine: Engine) -> None:
    store = IngestStore(engine, topics=Topics())
    body = HeartbeatBody(uptime_s=1, load_1m=0, mem_available_mb=1)
    old = received("pi-p", 1, body)  # received_at = SENT
    new = received("pi-p", 2, body)
    new = Received(new.topic, new.payload, 2, 1, False, SENT + timedelta(days=40))
    store.write([old, new])
    assert store.prune_ledger(before=SENT + timedelta(days=1)) == 1
    assert rows(engine, IngestedMessage) == 1
    assert store.write([new]).duplicates == 1  # the kept entry still deduplicates
    assert rows(engine, Heartbeat) == 2  # pruning the ledger never touches stored data


def test_an_expired_enrollment_token_is_refused(engine: Engine, tmp_path: Path) -> None:
    enrollment = Enrollment(engine, ControllerSettings(data_dir=tmp_path, dev_mode=True))
    row, secret = enrollment.create_token()
    with Session(engine) as session:
        stored = session.get(EnrollmentToken, row.id)
        assert stored is not None
        stored.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(stored)
        session.commit()
    with pytest.raises(EnrollmentError, match="expired"):
        enrollment.redeem(secret, device_id="pi-late")
    with Session(engine) as session:
        assert session.get(Device, "pi-late") is None  # nothing was created
