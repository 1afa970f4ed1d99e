"""Two controller replicas on one PostgreSQL and one Mosquitto, real agents, the leader killed.

Both replicas run ingest (one MQTT 5 shared subscription, a client id each)
and the planner loop; only the planner lease's holder steps it. A plan moving
three agents to m-big is applied on the leader (canary wave, then the rest),
the leader is SIGKILLed while the canary's wave runs, and the other replica
takes the lease over and finishes the rollout: each step's command recorded
and acknowledged once. Meanwhile a steady publisher sends numbered heartbeats
through the kill; when the killed replica comes back (same client id, as
systemd would restart it) the broker hands it what its session kept, and every
message is stored exactly once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from controller import models as db
from controller.core.db import create_db_engine, session_scope
from shared.messages import HeartbeatBody, encode, make_envelope
from shared.topics import TopicKind, Topics
from tests.controller.plans.db_world import SHAPES, add_run
from tests.controller.postgres import TempPostgres
from tests.factories.profiles import write_profiles
from tests.support.broker import MosquittoBroker
from tests.support.replicas import ReplicaFleet, lease

pytestmark = pytest.mark.timeout(420)
DEVICES = {f"big-{i}": "e2e-big" for i in (1, 2, 3)}
LEASE_TTL_S = 3.0
PUBLISHER = "steady-pub"


@pytest.fixture
def database() -> Iterator[tuple[str, Engine]]:
    """A fresh PostgreSQL cluster and an engine on it for the test's own queries."""
    server = TempPostgres().start()
    url = server.create_database("fleet")
    engine = create_db_engine(url)
    yield url, engine
    engine.dispose()
    server.stop()


@pytest.fixture
def replicas(tmp_path: Path, database: tuple[str, Engine]) -> Iterator[ReplicaFleet]:
    """Mosquitto and two replicas (replica-0 started first), no agents yet."""
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    classes = tmp_path / "classes"
    write_profiles(classes)
    fleet = ReplicaFleet(
        tmp_path, classes, database_url=database[0], broker=broker,
        planner_lease_ttl_s=str(LEASE_TTL_S),
    )  # fmt: skip
    try:
        yield fleet
    finally:
        fleet.stop()
        broker.stop()


class SteadyPublisher:
    """One simulated device publishing heartbeats seq 1, 2, ... at QoS 1 until stopped."""

    def __init__(self, port: int, rate_hz: float = 50.0) -> None:
        self.port, self.period = port, 1.0 / rate_hz
        self.acked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=PUBLISHER)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        topic = Topics().device(PUBLISHER, TopicKind.HEARTBEAT)
        body = HeartbeatBody(uptime_s=1.0, load_1m=0.1, mem_available_mb=100)
        seq = 0
        while not self._stop.wait(self.period):
            seq += 1
            info = client.publish(topic, encode(make_envelope(PUBLISHER, seq, body)), qos=1)
            info.wait_for_publish(10)
            self.acked += int(info.is_published())
        client.disconnect()
        client.loop_stop()


def _judged(engine: Engine) -> None:
    """m-big judged better than m-small, as the rollout tests write it (tiny models cannot)."""
    with session_scope(engine) as session:
        add_run(session, "m-small", "judge", "judge-server", 1)
        add_run(session, "m-big", "judge", "judge-server", 2)


def _stored_seqs(engine: Engine, device_id: str) -> list[int]:
    with Session(engine) as session:
        rows = session.exec(
            select(db.Heartbeat.seq).where(db.Heartbeat.device_id == device_id)
        ).all()
    return sorted(int(s) for s in rows)


def test_the_other_replica_finishes_a_rollout_when_the_leader_is_killed(
    replicas: ReplicaFleet,
    database: tuple[str, Engine],
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    fleet, engine = replicas, database[1]
    for index in range(2):
        fleet.wait(lambda i=index: fleet.set.healthy(i), 60, f"replica {index} healthy")
    fleet.wait(lambda: fleet.set.leader(engine) is not None, 30, "a planner lease holder")
    leader = fleet.set.leader(engine)
    assert leader is not None
    follower = 1 - leader
    api = fleet.replica_api(leader)
    for model_id, shape in SHAPES.items():
        fleet.upload_model(model_id, tiny_gguf_factory(model_id, **shape))
    fleet.enroll(DEVICES, controller_url=fleet.set.url(follower))
    for device_id in DEVICES:  # both models in every agent's cache: no download mid-rollout
        fleet.assign(device_id, "m-big")
        fleet.assign(device_id, "m-small")
    _judged(engine)

    with SteadyPublisher(fleet.broker_port) as publisher:
        fleet.wait(lambda: publisher.acked >= 50, 30, "the steady publisher under way")
        applied = api.post("/plans", json={})
        assert applied.status_code == 202, applied.text
        assert applied.json()["message"] == "3 changes in 2 waves"
        plan_id = applied.json()["plan"]["id"]
        token = lease(engine).token  # type: ignore[union-attr]
        fleet.set.children[leader].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]  # mid-rollout: wave 0 runs
        killed_at, acked_at_kill = time.monotonic(), publisher.acked
        fleet.wait(lambda: fleet.set.leader(engine) == follower, LEASE_TTL_S + 15, "a takeover")
        takeover_s = time.monotonic() - killed_at
        assert lease(engine).token == token + 1  # type: ignore[union-attr]
        survivor = fleet.replica_api(follower)
        # Mosquitto keeps routing the dead member's share (the canary's ack among it) to its
        # session: the killed replica comes back with its client id, as systemd would
        # restart it, and drains that; the rollout stays with the lease holder.
        stored_before_restart = len(_stored_seqs(engine, PUBLISHER))
        fleet.set.start(leader)

        def rollout_state() -> str | None:
            plan = survivor.get(f"/plans/{plan_id}").json()["plan"]
            state = plan["params"]["rollout"]["state"]
            return state if state != "running" else None

        assert fleet.wait(rollout_state, 120, "the survivor to finish the rollout") == "done"
        assert fleet.set.leader(engine) == follower
        assert lease(engine).token == token + 1  # type: ignore[union-attr]
        fleet.wait(lambda: publisher.acked >= 200, 60, "more heartbeats after the kill")
    sent = publisher.acked

    # Every step's command recorded once and acknowledged ok once by its device.
    detail = survivor.get(f"/plans/{plan_id}").json()
    assert {a["device_id"]: a["status"] for a in detail["assignments"]} == dict.fromkeys(
        DEVICES, "ok"
    )
    with Session(engine) as session:
        commands = session.exec(select(db.Command).where(db.Command.plan_id == plan_id)).all()
        assert sorted(c.id for c in commands) == sorted(f"p{plan_id}-as-{d}" for d in DEVICES)
        for command in commands:
            acks = session.exec(
                select(db.CommandAck.status).where(db.CommandAck.command_id == command.id)
            ).all()
            assert acks.count("ok") == 1, (command.id, acks)

    def all_on_m_big() -> bool:
        models = {d["id"]: d["model_id"] for d in survivor.get("/devices").json()["items"]}
        return models.items() >= dict.fromkeys(DEVICES, "m-big").items()

    fleet.wait(all_on_m_big, 30, "every agent's state saying m-big")

    fleet.wait(lambda: len(_stored_seqs(engine, PUBLISHER)) >= sent, 60, "every heartbeat stored")
    seqs = _stored_seqs(engine, PUBLISHER)
    assert seqs == list(range(1, sent + 1))  # none lost, none stored twice
    print(
        f"\nsteady publisher: {sent} acknowledged by the broker, {sent - acked_at_kill} of them "
        f"after the SIGKILL; {stored_before_restart} stored in all when the killed replica "
        f"was restarted; lease taken over {takeover_s:.1f} s after SIGKILL (ttl {LEASE_TTL_S} s)"
    )
    for device_id in DEVICES:  # the real agents' messages: none stored twice either
        heartbeats = _stored_seqs(engine, device_id)
        assert heartbeats and len(heartbeats) == len(set(heartbeats))
    with Session(engine) as session:
        duplicates = session.exec(
            select(func.count())
            .select_from(db.ServingMetric)
            .group_by(col(db.ServingMetric.device_id), col(db.ServingMetric.seq))
            .having(func.count() > 1)
        ).all()
    assert duplicates == []
