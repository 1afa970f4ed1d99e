"""Controller ingest throughput: simulated devices over real Mosquitto into SQLite.

Publisher processes (one paho client per simulated device) publish
heartbeats and metrics at QoS 1 as fast as the broker takes them. In the
same run a bare paho subscriber (auto-ack, counts only) and the controller's
IngestService (parse, dedupe, batch-write, ack after commit) subscribe to
the same topics. Printed: messages/s each achieved, the ratio, and the loss
(published - stored, which must be 0; verified against the database).

    python bench/ingest.py --devices 200 --messages 60000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Engine,  # noqa: E402
    func,
    select,
)

from controller.core.db import create_db_engine, migrate  # noqa: E402
from controller.ingest.mqtt import MqttOptions  # noqa: E402
from controller.ingest.service import IngestConfig, IngestService  # noqa: E402
from controller.models import Heartbeat, ServingMetric  # noqa: E402
from shared.messages import HeartbeatBody, MetricsBody, encode, make_envelope  # noqa: E402
from shared.topics import Topics  # noqa: E402
from tests.support.broker import MosquittoBroker  # noqa: E402


def _payloads(device_id: str, count: int) -> list[tuple[str, bytes]]:
    topics = Topics()
    now = datetime.now(UTC)
    out = []
    for seq in range(1, count + 1):
        if seq % 2:
            body: HeartbeatBody | MetricsBody = HeartbeatBody(
                uptime_s=seq, load_1m=0.5, mem_available_mb=900, outbox_depth=0
            )
        else:
            body = MetricsBody(window_s=10, requests=seq % 7, generated_tokens=120)
        envelope = make_envelope(device_id, seq, body, sent_at=now)
        out.append((topics.device(device_id, envelope.kind), encode(envelope)))
    return out


def _publisher(
    port: int, device_ids: list[str], per_device: int, ready: mp.Event, go: mp.Event
) -> None:
    clients = []
    for device_id in device_ids:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{device_id}")
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append((client, _payloads(device_id, per_device)))
    ready.set()
    go.wait()
    infos = []
    for i in range(per_device):
        for client, payloads in clients:
            topic, payload = payloads[i]
            infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(120)
    for client, _ in clients:
        client.disconnect()
        client.loop_stop()


class BareSubscriber:
    """A paho subscriber that only counts: the broker-side ceiling for this machine."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.count = 0
        self.last = 0.0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect

    def _on_connect(self, client: mqtt.Client, *args: object) -> None:
        client.subscribe("edgefleet/v1/devices/+/+", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, message: object) -> None:
        self.count += 1
        self.last = time.perf_counter()

    def connect(self) -> None:
        """Connect with a persistent session (queued messages wait for us)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()

    def disconnect(self) -> None:
        """Leave the session in place."""
        self.client.disconnect()
        self.client.loop_stop()


def _ingest(engine: Engine, port: int, batch_size: int) -> IngestService:
    service = IngestService(
        engine,
        MqttOptions(host="127.0.0.1", port=port, client_id="bench-controller"),
        topics=Topics(),
        config=IngestConfig(batch_size=batch_size, flush_interval_s=0.05),
    ).start()
    service.connection.wait_connected(10)
    return service


def _publish(port: int, devices: int, per_device: int, processes: int) -> float:
    """Run the publisher processes; return the seconds publishing took."""
    ids = [f"dev-{i:05d}" for i in range(devices)]
    ready, go = mp.Event(), mp.Event()
    procs = [
        mp.Process(target=_publisher, args=(port, ids[i::processes], per_device, ready, go))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    ready.wait(120)
    time.sleep(1.0)
    start = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    return time.perf_counter() - start


def _wait(counter: Callable[[], int], total: int, start: float) -> float:
    deadline = time.monotonic() + 600
    while counter() < total and time.monotonic() < deadline:
        time.sleep(0.002)
    return time.perf_counter() - start


def run(devices: int, messages: int, processes: int, batch_size: int, mode: str) -> dict[str, Any]:
    """One measured run; returns the numbers printed."""
    per_device = max(1, messages // devices)
    total = per_device * devices
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = MosquittoBroker(workdir / "broker").start()
    engine = create_db_engine(f"sqlite:///{workdir / 'controller.db'}")
    migrate(engine)
    bare = BareSubscriber(broker.port)
    bare.connect()
    service = _ingest(engine, broker.port, batch_size)
    time.sleep(0.5)
    if mode == "live":
        start = time.perf_counter()
        publish_s = _publish(broker.port, devices, per_device, processes)
        stored_s = _wait(lambda: service.stats.handled, total, start)
        bare_s = _wait(lambda: bare.count, total, start)
        bare_s = (bare.last - start) if bare.count else bare_s
    else:  # backlog: the broker holds everything, then each consumer drains it alone
        service.stop()
        bare.disconnect()
        publish_s = _publish(broker.port, devices, per_device, processes)
        start = time.perf_counter()
        bare.connect()
        bare_s = _wait(lambda: bare.count, total, start)
        bare.disconnect()
        start = time.perf_counter()
        service = _ingest(engine, broker.port, batch_size)
        stored_s = _wait(lambda: service.stats.handled, total, start)
    service.stop()
    with engine.connect() as conn:
        in_db = sum(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Heartbeat.__table__, ServingMetric.__table__)  # type: ignore[attr-defined]
        )
    broker.stop()
    return {
        "mode": mode,
        "devices": devices,
        "published": total,
        "publish_msg_s": total / publish_s,
        "bare_received": bare.count,
        "bare_msg_s": bare.count / bare_s,
        "stored": service.stats.stored,
        "in_db": in_db,
        "lost": total - in_db,
        "dead_letters": sum(service.stats.dead_letters.values()),
        "stored_msg_s": in_db / stored_s,
        "ratio_stored_to_bare": (in_db / stored_s) / (bare.count / bare_s),
        "batches": service.stats.batches,
    }


def main() -> None:
    """Parse arguments, run, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--mode", choices=["live", "backlog"], default="live")
    args = parser.parse_args()
    result = run(args.devices, args.messages, args.processes, args.batch_size, args.mode)
    for key, value in result.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else value
        )
        print(f"{key:>22}: {shown}")


if __name__ == "__main__":
    main()
