"""A controller restarted while devices publish loses nothing (persistent session, QoS 1)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from controller.ingest.service import IngestService
from controller.models import Heartbeat
from shared.messages import HeartbeatBody
from tests.controller.devices import FakeDevice, wait_until
from tests.support.broker import MosquittoBroker

TOTAL = 3000


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Heartbeat)).scalar_one())


def _publish_all(port: int, done: threading.Event) -> None:
    device = FakeDevice("pi-restart", port)
    body = HeartbeatBody(uptime_s=1, load_1m=0.1, mem_available_mb=10)
    infos = [device.publish_body(body) for _ in range(TOTAL)]
    acked = device.wait_acked(infos, timeout=60)
    device.close()
    if acked:
        done.set()


@pytest.mark.parametrize("drain", [True, False], ids=["clean-stop", "abandon-queue"])
def test_restart_while_publishing_loses_nothing(
    drain: bool,
    sqlite_engine: Engine,
    mosquitto_factory: Callable[..., MosquittoBroker],
    ingest_factory: Callable[..., IngestService],
) -> None:
    broker = mosquitto_factory()
    first = ingest_factory(sqlite_engine, broker, client_id="restart-ctl", batch_size=50)
    done = threading.Event()
    publisher = threading.Thread(target=_publish_all, args=(broker.port, done))
    publisher.start()
    assert wait_until(lambda: first.stats.stored >= 300)
    first.stop(drain=drain)
    stopped_at = stored(sqlite_engine)
    assert stopped_at < TOTAL, "the restart should happen while messages are still flowing"
    second = ingest_factory(sqlite_engine, broker, client_id="restart-ctl", batch_size=50)
    publisher.join(60)
    assert done.is_set()
    assert wait_until(lambda: stored(sqlite_engine) >= TOTAL, timeout=60)
    assert stored(sqlite_engine) == TOTAL
    assert first.stats.stored + second.stats.stored == TOTAL
    with sqlite_engine.connect() as conn:
        seqs = conn.execute(select(Heartbeat.seq)).scalars().all()  # type: ignore[call-overload]
    assert sorted(seqs) == list(range(1, TOTAL + 1))


def test_broker_restart_while_publishing_loses_nothing(
    sqlite_engine: Engine,
    mosquitto_factory: Callable[..., MosquittoBroker],
    ingest_factory: Callable[..., IngestService],
    tmp_path: Path,
) -> None:
    # a persistent Mosquitto keeps the controller's session (and its queue) across restarts
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    broker = mosquitto_factory(["persistence true", f"persistence_location {store}/"])
    service = ingest_factory(sqlite_engine, broker, client_id="outage-ctl", batch_size=50)
    done = threading.Event()
    publisher = threading.Thread(target=_publish_all, args=(broker.port, done))
    publisher.start()
    assert wait_until(lambda: service.stats.stored >= 300)
    broker.restart()
    publisher.join(90)
    assert done.is_set()
    assert wait_until(lambda: stored(sqlite_engine) >= TOTAL, timeout=60)
    assert stored(sqlite_engine) == TOTAL
    assert service.connection.generation >= 2  # it really reconnected
