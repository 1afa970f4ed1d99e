"""Benchmark results and dead letters over HTTP, fed by real ingest through Mosquitto."""

from __future__ import annotations

from controller.ingest.service import IngestService
from tests.controller.api.conftest import Api
from tests.controller.devices import FakeDevice, wait_until
from tests.factories.messages import bench_body
from tests.support.broker import MosquittoBroker


def test_bench_results_are_queryable_by_model_class_and_category(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    pi4 = FakeDevice("pi-b1", mosquitto.port)
    pc = FakeDevice("pc-b2", mosquitto.port)
    pi4.publish_body(bench_body("smollm2", "pi4-4gb"))
    pi4.publish_body(bench_body("gemma3", "pi4-4gb").model_copy(update={"run_id": "run-2"}))
    pc.publish_body(bench_body("smollm2", "cheap-pc-8gb"))
    assert wait_until(lambda: service.stats.stored >= 3, 10)
    pi4.close()
    pc.close()
    with api.client("viewer") as client:
        everything = client.get("/api/v1/bench/results").json()
        assert everything["total"] == 3
        smol = client.get("/api/v1/bench/results", params={"model_id": "smollm2"}).json()
        assert {r["device_class"] for r in smol["items"]} == {"pi4-4gb", "cheap-pc-8gb"}
        narrow = client.get(
            "/api/v1/bench/results",
            params={"model_id": "smollm2", "device_class": "pi4-4gb", "category": "math"},
        ).json()
        assert narrow["total"] == 1
        row = narrow["items"][0]
        assert row["device_id"] == "pi-b1" and row["judge_mean"] == 5.5
        assert row["decode_tok_s"] == 40.0 and row["refined"] is False
        none = client.get("/api/v1/bench/results", params={"category": "coding"}).json()
        assert none["total"] == 0
        summary = client.get("/api/v1/bench/summary", params={"device_class": "pi4-4gb"}).json()
    assert [(s["model_id"], s["runs"]) for s in summary] == [("gemma3", 1), ("smollm2", 1)]
    assert summary[1]["pct_of_reference"] == 61.1


def test_dead_letters_are_listed_counted_and_exported(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    device = FakeDevice("pi-bad", mosquitto.port)
    device.publish_raw("metrics", b"{not json")
    device.publish_raw("heartbeat", b'{"schema": "heartbeat/1"}')
    assert wait_until(lambda: sum(service.stats.dead_letters.values()) >= 2, 10)
    device.close()
    with api.client("viewer") as client:
        listed = client.get("/api/v1/dead-letters").json()
        assert listed["total"] == 2
        reasons = {d["reason"] for d in listed["items"]}
        assert reasons == {"bad_json", "bad_schema"}
        bad_json = client.get("/api/v1/dead-letters", params={"reason": "bad_json"}).json()
        detail = client.get(f"/api/v1/dead-letters/{bad_json['items'][0]['id']}").json()
        assert detail["payload_text"] == "{not json"
        assert client.get("/api/v1/dead-letters/counts").json() == {"bad_json": 1, "bad_schema": 1}
        metrics = client.get("/metrics").text
    assert 'edgefleet_dead_letters_total{reason="bad_json"} 1.0' in metrics
    assert "edgefleet_db_latency_seconds" in metrics


def test_bench_summary_has_a_row_per_strategy_timed_by_its_own_items(
    api_with_broker: tuple[Api, IngestService], mosquitto: MosquittoBroker
) -> None:
    api, service = api_with_broker
    body = bench_body("smollm2", "pi4-4gb")
    direct_row = body.questions[0]
    votes = [
        direct_row.model_copy(
            update={"item_id": f"math-{i}", "refined": True, "strategy": "vote:5", "e2e_ms": ms}
        )
        for i, ms in enumerate((14_000.0, 16_000.0, 18_000.0))
    ]
    vote_cat = body.categories[0].model_copy(update={"refined": True, "strategy": "vote:5"})
    body = body.model_copy(
        update={"questions": [direct_row, *votes], "categories": [*body.categories, vote_cat]}
    )
    device = FakeDevice("pi-votes", mosquitto.port)
    device.publish_body(body)
    assert wait_until(lambda: service.stats.stored >= 1, 10)
    device.close()
    with api.client("viewer") as client:
        summary = client.get("/api/v1/bench/summary").json()
        voted = client.get("/api/v1/bench/results", params={"strategy": "VOTE:5"}).json()
        refused = client.get("/api/v1/bench/results", params={"strategy": "vote:99"})
    by_strategy = {s["strategy"]: s for s in summary}
    assert set(by_strategy) == {"direct", "vote:5"}
    assert by_strategy["direct"]["e2e_ms_p50"] == 3000  # the run's zero-shot latency
    assert by_strategy["vote:5"]["e2e_ms_p50"] == 16_000  # the median of its own items
    assert voted["total"] == 1 and voted["items"][0]["strategy"] == "vote:5"
    assert refused.status_code == 422 and "vote:K" in refused.text
