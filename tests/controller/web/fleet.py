"""A small fleet built the way a real one is: models uploaded over the API, devices reporting
over MQTT through the controller's ingest, on a private Mosquitto.

Two classes (small-box 75 MB, big-box 6 GB), two tiny models; s1 and s2 are small boxes,
b1 a big one. m-small is benchmarked on small-box and m-big on big-box only, so each
class also has a *predicted* score. x1 reports hostile strings; off1 went offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from paho.mqtt.client import MQTTMessageInfo

from controller.core.db import create_db_engine, migrate
from controller.ingest.commands import CommandPublisher
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from shared.messages import (
    AnswerLatency,
    BenchBody,
    Body,
    DeviceStatus,
    HeartbeatBody,
    MetricsBody,
    ModelRef,
    Spread,
    StateBody,
)
from shared.quality import category_rows
from shared.topics import Topics
from tests.controller.api.conftest import Api, start_api
from tests.controller.devices import FakeDevice, wait_until
from tests.controller.plans.db_world import PCT, RSS, SHAPES
from tests.factories.messages import hello_body
from tests.factories.planner import questions_for
from tests.factories.profiles import write_profiles
from tests.support.broker import MosquittoBroker

CLASSES = {"small-box": 75, "big-box": 6000}
HOSTILE_MODEL = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2">'
HOSTILE_NAME = '<b onmouseover="window.__xss = 3">lab</b>'


@dataclass(frozen=True)
class Vitals:
    """What one device reports: its class, state, heartbeat and serving metrics."""

    device_class: str | None
    status: DeviceStatus
    model_id: str | None = None
    refine: bool = False
    load_1m: float = 0.1
    mem_available_mb: float = 5000.0
    temperature_c: float | None = None
    decode_tok_s: float | None = None
    latency_ms_p95: float | None = None


ONLINE, OFFLINE = DeviceStatus.ONLINE, DeviceStatus.OFFLINE
DEVICES = {
    "s1": Vitals("small-box", ONLINE, "m-small", False, 0.42, 1234.0, 48.5, 12.3, 4100),
    "s2": Vitals("small-box", ONLINE, None, False, 0.05, 900.0),
    "b1": Vitals("big-box", ONLINE, "m-small", True, 1.2, 5800.0, 61.0, 30.0, 850),
    "x1": Vitals(None, ONLINE, HOSTILE_MODEL),
    "off1": Vitals(None, OFFLINE),
}
BENCHED = {"s1": ("m-small", "small-box"), "b1": ("m-big", "big-box")}


def upload_models(api: Api, gguf: Callable[..., Path]) -> None:
    """Both tiny models through the registry's upload route, as an operator would."""
    with api.client("operator") as client:
        for model_id, shape in SHAPES.items():
            body = gguf(model_id, **shape).read_bytes()
            response = client.post(
                "/api/v1/models/upload", params={"model_id": model_id}, content=body
            )
            assert response.status_code == 201, response.text


def bench_run(model_id: str, device_class: str, run: int) -> BenchBody:
    """A benchmark run with judged questions (zero-shot and refined) and answer latencies."""
    pct = PCT["small" if model_id == "m-small" else "big"]
    questions = questions_for(dict.fromkeys(("writing", "math", "coding"), pct), seed=run)
    if model_id == "m-big":  # m-big was also measured voting: three times direct's device time
        questions += [
            q.model_copy(update={"refined": True, "strategy": "vote:5", "e2e_ms": 3 * q.e2e_ms})
            for q in questions
            if not q.refined
        ]
    return BenchBody(
        run_id=f"run-{run}",
        model=ModelRef(model_id=model_id),
        device_class=device_class,
        threads=1,
        n_ctx=2048,
        decode_tok_s=Spread(mean=20.0, std=0.5, n=3),
        prefill_tok_s=Spread(mean=200.0, std=5.0, n=3),
        zero_shot=AnswerLatency(
            ttft_ms_p50=300, ttft_ms_p95=400, e2e_ms_p50=8000, e2e_ms_p95=9000,
            generated_tokens_mean=128, n=5,
        ),
        refined=AnswerLatency(
            ttft_ms_p50=300, ttft_ms_p95=400, e2e_ms_p50=20000, e2e_ms_p95=23000,
            generated_tokens_mean=128, n=5,
        ),
        peak_rss_mb=RSS[model_id],
        questions=questions,
        categories=category_rows(questions),  # as the agent sums them
    )  # fmt: skip


def report(device: FakeDevice, vitals: Vitals) -> list[MQTTMessageInfo]:
    """Publish what a device says about itself: hello (if classed), state, heartbeat, metrics."""
    bodies: list[Body] = [] if vitals.device_class is None else [hello_body(vitals.device_class)]
    bodies.append(StateBody(status=vitals.status, model_id=vitals.model_id, refine=vitals.refine))
    bodies.append(
        HeartbeatBody(
            uptime_s=100,
            load_1m=vitals.load_1m,
            mem_available_mb=vitals.mem_available_mb,
            temperature_c=vitals.temperature_c,
        )
    )
    if vitals.decode_tok_s is not None:
        bodies.append(
            MetricsBody(
                window_s=60,
                requests=4,
                decode_tok_s=vitals.decode_tok_s,
                latency_ms_p95=vitals.latency_ms_p95,
            )
        )
    return [device.publish_body(body) for body in bodies]


HISTORY_POINTS = 12
"""s1's last hour: a heartbeat and a metrics report every 5 minutes, offline for 10 of them."""


def history(device: FakeDevice, vitals: Vitals) -> list[MQTTMessageInfo]:
    """An hour of vitals and serving metrics, oldest first, and an offline span."""
    now = datetime.now(UTC)
    sent = []
    for k in range(HISTORY_POINTS, 0, -1):
        at = now - timedelta(minutes=5 * k)
        beat = HeartbeatBody(
            uptime_s=100 + k, load_1m=0.2 + 0.05 * k, mem_available_mb=1200.0 - 10 * k,
            rss_mb=40.0 + k, temperature_c=45.0 + k / 2, outbox_depth=k % 4,
        )  # fmt: skip
        metrics = MetricsBody(
            window_s=300, requests=3, decode_tok_s=10.0 + k / 4, latency_ms_p95=3000.0 + 100 * k
        )
        sent += [device.publish_body(beat, sent_at=at), device.publish_body(metrics, sent_at=at)]
    for minutes, status in ((40, DeviceStatus.OFFLINE), (30, DeviceStatus.ONLINE)):
        state = StateBody(status=status, model_id=vitals.model_id, refine=vitals.refine)
        sent.append(device.publish_body(state, sent_at=now - timedelta(minutes=minutes)))
    return sent


def populate(api: Api, port: int, stored: Callable[[], int]) -> None:
    """Every device reports, two run a benchmark, one message is garbage; wait for ingest."""
    expected = 0
    for run, (device_id, vitals) in enumerate(DEVICES.items()):
        device = FakeDevice(device_id, port)
        sent = history(device, vitals) if device_id == "s1" else []
        sent += report(device, vitals)
        if device_id in BENCHED:
            sent.append(device.publish_body(bench_run(*BENCHED[device_id], run)))
        expected += len(sent)
        if device_id == "x1":
            sent.append(device.publish_raw("heartbeat", b"this is not json"))
        assert device.wait_acked(sent, 10)
        device.close()
    assert wait_until(lambda: stored() >= expected, 20), (stored(), expected)
    with api.client("operator") as client:
        named = client.patch("/api/v1/devices/x1", json={"name": HOSTILE_NAME})
        assert named.status_code == 200, named.text
        assert wait_until(lambda: _dead_letters(client) >= 1, 10)


def _dead_letters(client: httpx.Client) -> int:
    return sum(client.get("/api/v1/dead-letters/counts").json().values())


@dataclass
class Dashboard:
    """The running controller behind the dashboard, and the ingest that filled it."""

    api: Api
    ingest: IngestService
    broker: MosquittoBroker

    @property
    def url(self) -> str:
        """The dashboard page."""
        return f"{self.api.url}/dashboard/"


@contextmanager
def reported_fleet(root: Path, gguf: Callable[..., Path]) -> Iterator[Dashboard]:
    """A controller on uvicorn whose fleet reported over MQTT to a private Mosquitto."""
    broker = MosquittoBroker(root / "broker").start()
    engine = create_db_engine(f"sqlite:///{root / 'controller.db'}")
    migrate(engine)
    write_profiles(root / "classes", CLASSES)
    options = MqttOptions(host="127.0.0.1", port=broker.port, client_id="dashboard-ctl")
    ingest = IngestService(
        engine, options, topics=Topics(), config=IngestConfig(flush_interval_s=0.05)
    ).start()
    assert ingest.connection.wait_connected(10), "ingest did not connect"
    sender = CommandPublisher(engine, ingest.connection, topics=Topics())
    api = start_api(
        root / "data",
        engine=engine,
        sender=sender,
        stats=ingest.stats,
        device_classes_dir=root / "classes",
    )
    try:
        upload_models(api, gguf)
        populate(api, broker.port, lambda: ingest.stats.stored)
        yield Dashboard(api, ingest, broker)
    finally:
        api.server.stop()
        ingest.stop()
        engine.dispose()
        broker.stop()
