"""The API on a real PostgreSQL: the same routes, and values PostgreSQL refuses are 4xx, not 5xx."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from controller.models import Device, ServingMetric
from tests.controller.api.conftest import start_api


def test_api_on_postgres_lists_filters_and_refuses_oversized_values(
    tmp_path: Path, pg_engine: Engine
) -> None:
    api = start_api(tmp_path / "data", engine=pg_engine)
    try:
        with Session(pg_engine) as session:
            for i in range(12):
                session.add(Device(id=f"pg-{i:02d}", device_class="pi4-4gb", status="online"))
            session.commit()
        with api.client("operator") as client:
            page = client.get("/api/v1/devices", params={"limit": 5, "offset": 10}).json()
            assert page["total"] == 12 and [d["id"] for d in page["items"]] == ["pg-10", "pg-11"]
            renamed = client.patch("/api/v1/devices/pg-01", json={"name": "kitchen"})
            assert renamed.status_code == 200 and renamed.json()["name"] == "kitchen"
            too_long = client.patch("/api/v1/devices/pg-01", json={"name": "x" * 300})
            assert too_long.status_code == 422
            assert too_long.json()["error"] == "invalid_value"
            assert client.get("/api/v1/devices/pg-01").json()["name"] == "kitchen"
            classes = {c["name"]: c["devices_online"] for c in client.get("/api/v1/classes").json()}
            assert classes["pi4-4gb"] == 12
    finally:
        api.server.stop()


def test_latest_serving_metrics_on_postgres(tmp_path: Path, pg_engine: Engine) -> None:
    with Session(pg_engine) as session:
        for seq, minute, tok_s in ((1, 1, 4.0), (2, 3, 6.0), (3, 2, 9.0)):
            sent = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
            session.add(ServingMetric(device_id="pg-a", seq=seq, sent_at=sent, window_s=60,
                                      decode_tok_s=tok_s))  # fmt: skip
        session.commit()
    api = start_api(tmp_path / "data", engine=pg_engine)
    try:
        with api.client("viewer") as client:
            latest = client.get("/api/v1/serving/latest").json()
        assert [(m["device_id"], m["decode_tok_s"]) for m in latest] == [("pg-a", 6.0)]
    finally:
        api.server.stop()


def test_malformed_basic_header_gets_a_clear_401(tmp_path: Path) -> None:
    import httpx

    api = start_api(tmp_path / "data")
    try:
        response = httpx.get(
            f"{api.url}/api/v1/models/x/file", headers={"Authorization": "Basic !!!"}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert "Basic" in response.headers["www-authenticate"]
    finally:
        api.server.stop()
        api.engine.dispose()
