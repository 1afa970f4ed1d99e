"""A fleet of hundreds in the overview: the table is paged and filtered on the server, so the
page never fetches the whole fleet. A real controller over a seeded database, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Request, expect
from sqlalchemy import insert

from controller.core.db import create_db_engine, migrate
from controller.models import Device
from tests.controller.api.conftest import Api, start_api
from tests.controller.web.conftest import Tab

DEVICES = 250
OFFLINE = range(0, DEVICES, 5)  # every fifth: 50 offline, 200 online
PAGE = 100


@dataclass
class SeededFleet:
    """A controller whose database already holds the fleet (as ingest leaves device rows)."""

    api: Api

    @property
    def url(self) -> str:
        """The dashboard page."""
        return f"{self.api.url}/dashboard/"


def _device(i: int, now: datetime) -> dict[str, object]:
    return {
        "id": f"dev-{i:03d}", "name": f"box {i}", "device_class": "pi4-4gb",
        "status": "offline" if i in OFFLINE else "online", "model_id": "smollm2",
        "enrolled": True, "created_at": now, "cmd_seq": 0, "last_seen_at": now,
        "last_heartbeat": {"load_1m": 0.5, "mem_available_mb": 900.0, "temperature_c": 50.0},
    }  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededFleet]:
    root = tmp_path_factory.mktemp("big-fleet")
    engine = create_db_engine(f"sqlite:///{root / 'controller.db'}")
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(Device), [_device(i, now) for i in range(DEVICES)])
    api = start_api(root / "data", engine=engine)
    yield SeededFleet(api)
    api.server.stop()
    engine.dispose()


def _ids(tab: Tab) -> list[str | None]:
    return [row.get_attribute("data-key") for row in tab.page.locator("#devices tbody tr").all()]


def test_the_overview_pages_a_large_fleet_and_counts_it_whole(fleet: SeededFleet, tab: Tab) -> None:
    asked: list[Request] = []
    tab.page.on("request", lambda r: asked.append(r) if "/api/v1/" in r.url else None)
    tab.sign_in(fleet, "viewer")
    page = tab.page
    counts = {k: page.locator(f"#count-{k}").inner_text() for k in
              ("total", "online", "offline", "unknown")}  # fmt: skip
    assert counts == {"total": "250", "online": "200", "offline": "50", "unknown": "0"}
    expect(page.locator("#fleet-range")).to_have_text("Devices 1–100 of 250")
    assert _ids(tab) == [f"dev-{i:03d}" for i in range(PAGE)]
    expect(page.locator("#fleet-previous")).to_be_disabled()

    page.get_by_role("button", name="Next").click()
    expect(page.locator("#fleet-range")).to_have_text("Devices 101–200 of 250")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#fleet-range")).to_have_text("Devices 201–250 of 250")
    assert _ids(tab) == [f"dev-{i:03d}" for i in range(200, DEVICES)]
    expect(page.locator("#fleet-next")).to_be_disabled()
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#fleet-range")).to_have_text("Devices 101–200 of 250")

    listings = [parse_qs(urlparse(r.url).query) for r in asked if "/api/v1/devices?" in r.url]
    assert listings and max(int(q["limit"][0]) for q in listings) <= PAGE  # never the whole fleet
    serving = [parse_qs(urlparse(r.url).query) for r in asked if "serving/latest" in r.url]
    assert serving and all(len(q["device_id"]) <= PAGE for q in serving)
    assert tab.errors == []


def test_filters_run_on_the_server_and_start_from_the_first_page(
    fleet: SeededFleet, tab: Tab, screenshots: Path
) -> None:
    tab.sign_in(fleet, "viewer")
    page = tab.page
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#fleet-range")).to_have_text("Devices 101–200 of 250")

    page.get_by_label("Status", exact=True).select_option("offline")
    expect(page.locator("#fleet-range")).to_have_text("Devices 1–50 of 50")
    assert _ids(tab) == [f"dev-{i:03d}" for i in OFFLINE]
    expect(page.locator("#count-total")).to_have_text("250")  # the counts stay the fleet's

    page.get_by_label("Status", exact=True).select_option("")
    page.get_by_label("Device id or name").fill("dev-01")
    expect(page.locator("#fleet-range")).to_have_text("Devices 1–10 of 10")
    assert _ids(tab) == [f"dev-{i:03d}" for i in range(10, 20)]
    page.screenshot(path=str(screenshots / "fleet-filtered.png"), full_page=True)

    page.get_by_label("Device id or name").fill("no-such-box")
    expect(page.locator("#devices-empty")).to_have_text("No device matches these filters.")
    expect(page.locator("#devices tbody tr")).to_have_count(0)
    assert tab.errors == []
