"""The fleet simulator's ingest probe must not reuse a seq (the 13 ``seq_conflict`` of a 10k run).

``bench/fleet_sim.py`` publishes a probe heartbeat every second until ingest
stores it. Its retries sent a new envelope (new ``sent_at``) under the same seq;
when they reached ingest together (a backlog after a slow start), the first was
stored and every other one was dead-lettered as a reused seq. The retries are
now the same bytes, which ingest counts as duplicates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from bench.fleet_devices import SimDevice
from bench.fleet_sim import wait_subscribed
from controller.ingest.service import IngestService
from controller.models import DeadLetter, Heartbeat, IngestedMessage
from tests.support.broker import MosquittoBroker


def test_probe_retries_that_reach_ingest_in_one_backlog_are_duplicates_not_conflicts(
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
) -> None:
    # A subscribed, persistent session that is offline: the broker queues the probe's tries.
    ingest_factory(sqlite_engine, mosquitto, client_id="probe-ingest").stop()
    device = SimDevice("sim-probe", "pi4-4gb", password="unused-on-this-broker")
    waited: list[float] = []
    probe = threading.Thread(
        target=lambda: waited.append(wait_subscribed(device, mosquitto.port, sqlite_engine, 7))
    )
    probe.start()
    threading.Event().wait(3.5)  # three or four tries queue up meanwhile
    ingest_factory(sqlite_engine, mosquitto, client_id="probe-ingest")  # the backlog, at once
    probe.join(60)
    assert waited and waited[0] >= 3, "the probe returned before ingest was back"
    with Session(sqlite_engine) as session:
        dead = session.exec(select(func.count()).select_from(DeadLetter)).one()
        ledger = session.exec(select(IngestedMessage)).all()
        heartbeats = session.exec(select(func.count()).select_from(Heartbeat)).one()
    assert dead == 0
    assert [(m.device_id, m.seq) for m in ledger] == [("sim-probe", 7)]
    assert heartbeats == 1
