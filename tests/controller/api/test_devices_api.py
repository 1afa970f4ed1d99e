"""Devices over HTTP: filters, pagination, state history, downsampled time series, live ingest."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from controller.ingest.service import IngestService
from controller.models import Device, DeviceState, Heartbeat, ServingMetric
from shared.messages import DeviceStatus, EngineReport, MetricsBody, StateBody
from tests.controller.api.conftest import Api
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import hello_body
from tests.support.broker import MosquittoBroker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _seed_devices(api: Api) -> None:
    with Session(api.engine) as session:
        for i in range(25):
            session.add(
                Device(
                    id=f"dev-{i:02d}",
                    name=f"box {i}",
                    device_class="pi4-4gb" if i % 2 == 0 else "pi5-8gb",
                    status="online" if i % 3 == 0 else "offline",
                    model_id="smol" if i < 5 else None,
                )
            )
        session.commit()


def test_device_list_paginates_in_id_order(api: Api) -> None:
    _seed_devices(api)
    with api.client("viewer") as client:
        pages = [
            client.get("/api/v1/devices", params={"limit": 10, "offset": o}).json()
            for o in (0, 10, 20, 30)
        ]
    assert [p["total"] for p in pages] == [25] * 4
    ids = [d["id"] for p in pages for d in p["items"]]
    assert ids == [f"dev-{i:02d}" for i in range(25)]
    assert pages[3]["items"] == []


def test_device_list_filters_combine(api: Api) -> None:
    _seed_devices(api)
    with api.client("viewer") as client:
        got = client.get(
            "/api/v1/devices", params={"device_class": "pi4-4gb", "status": "online"}
        ).json()
        expected = [f"dev-{i:02d}" for i in range(25) if i % 2 == 0 and i % 3 == 0]
        assert [d["id"] for d in got["items"]] == expected and got["total"] == len(expected)
        serving = client.get("/api/v1/devices", params={"model_id": "smol"}).json()
        assert serving["total"] == 5
        search = client.get("/api/v1/devices", params={"q": "box 1"}).json()
        assert {d["id"] for d in search["items"]} == {f"dev-{i:02d}" for i in (1, *range(10, 20))}
        classes = {c["name"]: c for c in client.get("/api/v1/classes").json()}
        assert classes["pi4-4gb"]["devices"] == 13
        assert classes["pi4-4gb"]["devices_online"] == len(expected)
        assert client.get("/api/v1/devices/nope").status_code == 404
        assert client.get("/api/v1/devices", params={"limit": 0}).status_code == 422


def test_metrics_are_downsampled_in_buckets_with_exact_means(api: Api) -> None:
    values = [float((i * 7) % 50) for i in range(3600)]
    with Session(api.engine) as session:
        session.add(Device(id="pi-ts"))
        for i, value in enumerate(values):
            sent = T0 + timedelta(seconds=i)
            session.add(ServingMetric(device_id="pi-ts", seq=i, sent_at=sent, window_s=1,
                                      decode_tok_s=value))  # fmt: skip
            if i % 10 == 0:
                beat = Heartbeat(device_id="pi-ts", seq=10_000 + i, sent_at=sent, uptime_s=i,
                                 load_1m=i / 3600, mem_available_mb=1000)  # fmt: skip
                session.add(beat)
        session.add(ServingMetric(device_id="other", seq=1, sent_at=T0, window_s=1,
                                  decode_tok_s=1e9))  # fmt: skip
        session.commit()
    params = {
        "field": "decode_tok_s",
        "since": T0.isoformat(),
        "until": (T0 + timedelta(hours=1)).isoformat(),
        "max_points": 60,
    }
    with api.client("viewer") as client:
        series = client.get("/api/v1/devices/pi-ts/metrics", params=params).json()
        assert series["bucket_s"] == 60
        points = series["points"]
        assert len(points) == 60
        for n, point in enumerate(points):
            chunk = values[n * 60 : (n + 1) * 60]
            assert point["count"] == 60
            assert abs(point["mean"] - statistics.fmean(chunk)) < 1e-9
            assert point["min"] == min(chunk) and point["max"] == max(chunk)
            assert datetime.fromisoformat(point["t"]) == T0 + timedelta(minutes=n)
        coarse = client.get("/api/v1/devices/pi-ts/metrics", params={**params, "max_points": 7})
        assert len(coarse.json()["points"]) <= 7
        assert sum(p["count"] for p in coarse.json()["points"]) == 3600
        vitals = client.get(
            "/api/v1/devices/pi-ts/metrics", params={**params, "field": "load_1m", "max_points": 6}
        ).json()
        assert [p["count"] for p in vitals["points"]] == [60] * 6
        bad = client.get(
            "/api/v1/devices/pi-ts/metrics",
            params={**params, "since": params["until"], "until": params["since"]},
        )
        assert bad.status_code == 400 and bad.json()["error"] == "bad_window"


def test_state_history_is_newest_first(api: Api) -> None:
    with Session(api.engine) as session:
        session.add(Device(id="pi-st"))
        for i, status in enumerate(["online", "offline", "online"]):
            session.add(DeviceState(device_id="pi-st", seq=i, sent_at=T0 + timedelta(minutes=i),
                                    status=status))  # fmt: skip
        session.commit()
    with api.client("viewer") as client:
        history = client.get("/api/v1/devices/pi-st/states").json()
    assert [s["seq"] for s in history["items"]] == [2, 1, 0]
    assert history["items"][1]["status"] == "offline"


def test_ingested_device_shows_up_online_with_metrics(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    device = FakeDevice("pi-live", mosquitto.port)
    engine = EngineReport(ok=False, crash="SIGILL", reason="the engine check died: SIGILL")
    device.publish_body(hello_body("pi4-4gb").model_copy(update={"engine": engine}))
    device.publish_body(StateBody(status=DeviceStatus.ONLINE, model_id="smol"))
    for n in range(5):
        device.publish_body(MetricsBody(window_s=10, requests=n, decode_tok_s=20.0 + n))
    assert wait_until(lambda: service.stats.stored >= 7, 10)
    device.close()
    with api.client("viewer") as client:
        listed = client.get("/api/v1/devices", params={"status": "online"}).json()
        assert [d["id"] for d in listed["items"]] == ["pi-live"]
        assert listed["items"][0]["device_class"] == "pi4-4gb"
        assert listed["items"][0]["engine"] == engine.model_dump(mode="json")  # as reported
        series = client.get("/api/v1/devices/pi-live/metrics", params={"max_points": 1}).json()
        assert series["points"][0]["count"] == 5
        assert series["points"][0]["mean"] == statistics.fmean(20.0 + n for n in range(5))
        metrics = client.get("/metrics").text
    assert "edgefleet_devices_online 1.0" in metrics
    assert "edgefleet_ingest_messages_stored_total 7.0" in metrics
    assert f"edgefleet_ingest_confirmations_total {service.stats.confirmations}.0" in metrics
    assert service.stats.confirmations >= 1  # pi-live was told its seqs are stored


def test_latest_serving_metrics_are_the_newest_report_of_each_device(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    devices = [FakeDevice(name, mosquitto.port) for name in ("pi-a", "pi-b", "pi-quiet")]
    sent = [
        devices[0].publish_body(MetricsBody(window_s=10, decode_tok_s=5.0, latency_ms_p95=900)),
        devices[0].publish_body(MetricsBody(window_s=10, decode_tok_s=7.5, latency_ms_p95=800)),
        devices[1].publish_body(MetricsBody(window_s=30, model_id="smol", decode_tok_s=11.0)),
        devices[2].publish_body(StateBody(status=DeviceStatus.ONLINE)),
    ]
    assert wait_until(lambda: service.stats.stored >= len(sent), 10)
    for device in devices:
        device.close()
    with api.client("viewer") as client:
        latest = client.get("/api/v1/serving/latest").json()
    assert [(m["device_id"], m["decode_tok_s"], m["latency_ms_p95"]) for m in latest] == [
        ("pi-a", 7.5, 800.0),
        ("pi-b", 11.0, None),
    ]
    assert latest[1]["model_id"] == "smol" and latest[1]["window_s"] == 30
    with api.client("viewer") as client:
        page = client.get("/api/v1/serving/latest", params={"device_id": ["pi-b", "pi-quiet"]})
        too_many = client.get(
            "/api/v1/serving/latest", params={"device_id": [f"d{i}" for i in range(101)]}
        )
        bad_id = client.get("/api/v1/serving/latest", params={"device_id": "../x"})
    assert [m["device_id"] for m in page.json()] == ["pi-b"]  # a page of the fleet table
    assert too_many.status_code == 400 and "at most 100" in too_many.json()["detail"]
    assert bad_id.status_code == 422
