"""Queue depth: agents report it in their heartbeat; the gateway stores it and ranks by it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from controller.gateway.fleet_view import QUEUE_REPORT_MAX_AGE, reported_queue, serving_routes
from controller.gateway.routing import Route, rank
from controller.ingest.service import IngestService
from shared.messages import DeviceStatus, HeartbeatBody, HelloBody, QueueDepth, StateBody
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import hello_body
from tests.support.broker import MosquittoBroker

_devices = st.lists(
    st.tuples(
        st.integers(0, 20),  # reported queue
        st.integers(0, 8),  # the gateway's open requests
        st.one_of(st.none(), st.floats(1, 10_000)),  # measured p50
    ),
    min_size=1,
    max_size=6,
)


@given(_devices)
def test_a_device_never_ranks_ahead_of_one_with_less_expected_wait(
    devices: list[tuple[int, int, float | None]],
) -> None:
    routes = [Route(f"d{i}", "m", "http://h", p50, q) for i, (q, _, p50) in enumerate(devices)]
    inflight = {f"d{i}": open_ for i, (_, open_, _) in enumerate(devices)}
    ranked = rank(routes, inflight, max_inflight=4)
    for a, b in zip(ranked.open, ranked.open[1:], strict=False):
        assert a.queued + inflight[a.device_id] <= b.queued + inflight[b.device_id]
        if a.queued + inflight[a.device_id] == b.queued + inflight[b.device_id]:
            if a.latency_ms is not None and b.latency_ms is not None:
                assert a.latency_ms <= b.latency_ms
    assert {r.device_id for r in ranked.full} == {d for d, n in inflight.items() if n >= 4}


def test_a_reported_queue_outweighs_a_faster_p50_and_the_gateways_own_requests_add() -> None:
    fast_busy = Route("fast", "m", "http://a", 100, queued=3)
    slow_idle = Route("slow", "m", "http://b", 900, queued=0)
    assert rank([fast_busy, slow_idle], {}, max_inflight=4).open[0].device_id == "slow"
    ranked = rank([fast_busy, slow_idle], {"slow": 3}, max_inflight=4)
    assert ranked.open[0].device_id == "fast"  # 3 + 0 against 0 + 3: the tie goes to the p50


def test_a_stale_or_malformed_report_counts_as_empty() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    beat = {"queue": {"active": 2, "waiting": 5, "bound": 8}}
    assert reported_queue(beat, now - timedelta(seconds=30), now) == 7
    assert reported_queue(beat, now - QUEUE_REPORT_MAX_AGE - timedelta(seconds=1), now) == 0
    assert reported_queue({"uptime_s": 1}, now, now) == 0  # an agent from before the gateway
    assert reported_queue({"queue": {"active": "x", "waiting": 1}}, now, now) == 0
    assert reported_queue(None, None, now) == 0


def _serving(name: str, port: int, url: str) -> FakeDevice:
    device = FakeDevice(name, port)
    hello: HelloBody = hello_body().model_copy(update={"chat_api_url": url})
    device.publish_body(hello).wait_for_publish(5)
    device.publish_body(StateBody(status=DeviceStatus.ONLINE, model_id="smollm2"))
    return device


def test_a_reported_depth_is_stored_and_routes_around_the_busy_device(
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
) -> None:
    service = ingest_factory(sqlite_engine, mosquitto, client_id="queue-depth")
    busy = _serving("pi-busy", mosquitto.port, "http://10.0.0.1:8080")
    idle = _serving("pi-idle", mosquitto.port, "http://10.0.0.2:8080")
    for device, depth in ((busy, QueueDepth(active=1, waiting=3, bound=5)), (idle, None)):
        beat = HeartbeatBody(uptime_s=5, load_1m=0.1, mem_available_mb=900, queue=depth)
        device.publish_body(beat).wait_for_publish(5)
    assert wait_until(lambda: service.stats.stored >= 6)
    busy.close()
    idle.close()

    routes = {r.device_id: r for r in serving_routes(sqlite_engine, "smollm2")}
    assert (routes["pi-busy"].queued, routes["pi-idle"].queued) == (4, 0)
    # the busy device sorts first by id and would win on a tie: its reported queue moves it
    ranked = rank(list(routes.values()), {}, max_inflight=4)
    assert [r.device_id for r in ranked.open] == ["pi-idle", "pi-busy"]
