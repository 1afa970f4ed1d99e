"""The fleet overview and the leaderboard in a real browser: the values the devices reported,
scores as the API computes them, refreshes that change only what changed, phones, keyboards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, Request, expect

from shared.messages import HeartbeatBody
from tests.controller.devices import FakeDevice, wait_until
from tests.controller.web.conftest import Dashboard, Tab

CONTRAST = Path(__file__).with_name("contrast.js")
COLUMNS = ["Device", "Status", "Last seen", "Class", "Model", "Strategy", "Load (1 min)",
           "Free memory", "Temperature", "Decode tok/s", "p95 latency"]  # fmt: skip


def _cells(row: Locator) -> dict[str, str]:
    texts = row.locator("th, td").all_inner_texts()
    return dict(zip(COLUMNS, (t.strip() for t in texts), strict=True))


def test_operator_sees_every_device_with_its_reported_values(
    dashboard: Dashboard, tab: Tab
) -> None:
    page = tab.page
    tab.sign_in(dashboard, "operator")
    rows = page.locator("#devices tbody tr")
    expect(rows).to_have_count(5)
    assert [r.get_attribute("data-key") for r in rows.all()] == ["b1", "off1", "s1", "s2", "x1"]
    s1 = _cells(page.locator("#devices tr[data-key='s1']"))
    assert s1["Last seen"].endswith(" s ago")
    assert {k: v for k, v in s1.items() if k != "Last seen"} == {
        "Device": "s1", "Status": "online", "Class": "small-box", "Model": "m-small",
        "Strategy": "direct", "Load (1 min)": "0.42", "Free memory": "1.2 GB",
        "Temperature": "48.5 °C", "Decode tok/s": "12.3", "p95 latency": "4.1 s",
    }  # fmt: skip
    b1 = _cells(page.locator("#devices tr[data-key='b1']"))
    assert (b1["Strategy"], b1["Decode tok/s"], b1["p95 latency"]) == ("refine:1", "30.0", "850 ms")
    off1 = _cells(page.locator("#devices tr[data-key='off1']"))
    assert (off1["Status"], off1["Class"], off1["Decode tok/s"]) == ("offline", "–", "–")
    counts = {k: page.locator(f"#count-{k}").inner_text() for k in
              ("total", "online", "offline", "unknown", "dead-letters")}  # fmt: skip
    assert counts == {"total": "5", "online": "4", "offline": "1", "unknown": "0",
                      "dead-letters": "1"}  # fmt: skip
    expect(page.locator("#dead-letter-reasons")).to_contain_text("bad_json 1")
    assert tab.errors == []


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _board_row(tab: Tab, device_class: str, model_id: str, strategy: str) -> Locator:
    board = tab.page.locator(f"[data-board='{device_class}']")
    return board.locator(f"tbody tr[data-key='{model_id}|{strategy}']")


def _expect_row_matches_api(row: Locator, score: dict[str, Any]) -> None:
    cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
    assert cells[1] == score["model_id"] and cells[2] == score["strategy"]
    assert cells[3] == _fmt(score["psi"], 4)
    low, high = score["B_ci"]
    assert cells[4] == f"{_fmt(score['B'])} [{_fmt(low)}, {_fmt(high)}]"
    assert cells[7] == _fmt(score["C"], 3)
    assert cells[10].startswith(str(score["n_questions"]))
    assert cells[10].endswith(", ".join(score["suites"]) or "no suite named")
    assert ("predicted" in cells[11]) is score["predicted"]
    assert ("overlaps" in cells[11]) is score["B_overlaps_next"]
    assert cells[9].startswith("≈") is score["predicted"]
    assert cells[8].endswith("measured" if score["memory_measured"] else "estimate")


def test_leaderboard_shows_the_api_scores_with_predictions_marked(
    dashboard: Dashboard, tab: Tab
) -> None:
    with dashboard.api.client("viewer") as client:
        scores = client.get("/api/v1/scores").json()
    tab.sign_in(dashboard, "viewer")
    page = tab.page
    expect(page.locator("#class-boards caption")).to_have_text(["Class big-box", "Class small-box"])
    for device_class, rows in scores["classes"].items():
        board = page.locator(f"[data-board='{device_class}'] tbody tr")
        assert [r.get_attribute("data-key") for r in board.all()] == [
            f"{s['model_id']}|{s['strategy']}" for s in rows
        ]
        for score in rows:
            row = _board_row(tab, device_class, score["model_id"], score["strategy"])
            _expect_row_matches_api(row, score)
    # m-big was benchmarked on big-box only: on small-box its latency is a prediction.
    predicted = _board_row(tab, "small-box", "m-big", "direct")
    expect(predicted.locator(".badge-predicted")).to_have_text("predicted")
    measured = _board_row(tab, "small-box", "m-small", "direct")
    expect(measured.locator(".badge-predicted")).to_have_count(0)
    weights = dict(zip(page.locator("#weights dt").all_inner_texts(),
                       page.locator("#weights dd").all_inner_texts(), strict=True))  # fmt: skip
    assert weights["γ (gamma)"] == _fmt(scores["weights"]["gamma"]) == "0.10"
    assert weights["ρ (rho)"] == "0.25" and len(weights) == 7
    expect(page.locator("#hardware tbody tr")).to_have_count(len(scores["hardware_independent"]))
    assert tab.errors == []


def _count(requests: list[Request], resource: str) -> int:
    return sum(r.url.split("/api/v1/")[-1].split("?")[0] == resource for r in requests)


def _next_refresh(page: Page) -> None:
    """Move the page's clock one refresh period on and wait for that refresh to finish."""
    before = page.locator("#refreshed").inner_text()
    page.clock.fast_forward(15_000)
    expect(page.locator("#refreshed")).not_to_have_text(before)


def test_the_timed_refresh_changes_only_what_changed(dashboard: Dashboard, tab: Tab) -> None:
    page = tab.page
    page.clock.install()  # the page's timers run on a clock the test moves
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    tab.sign_in(dashboard, "viewer")
    kept = [
        page.locator(selector).element_handle()
        for selector in ("#devices tr[data-key='s2']", "#devices tr[data-key='s2'] th",
                         "#devices tr[data-key='s1'] td >> nth=4")
    ]  # fmt: skip
    device = FakeDevice("s2", dashboard.broker.port, first_seq=1000)
    stored = dashboard.ingest.stats.stored
    sent = device.publish_body(HeartbeatBody(uptime_s=200, load_1m=1.5, mem_available_mb=700))
    assert device.wait_acked([sent], 10)
    device.close()
    assert wait_until(lambda: dashboard.ingest.stats.stored > stored, 10)
    page.clock.fast_forward(14_000)
    row = page.locator("#devices tr[data-key='s2']")
    page.wait_for_timeout(300)
    expect(row.locator("td").nth(5)).to_have_text("0.05")  # not yet: the period is 15 s
    page.clock.fast_forward(2_000)
    expect(row.locator("td").nth(5)).to_have_text("1.50")
    expect(row.locator("td").nth(6)).to_have_text("700 MB")
    # s2's row and its unchanged cells were patched in place; s1's cells were left alone.
    assert page.evaluate("nodes => nodes.map((n) => n.isConnected)", kept) == [True] * 3
    # Scores change only with new benchmarks: fetched on sign-in, then every 4th period.
    per_refresh = 4  # the fleet table's page, and its total, online and offline counts
    assert (_count(requests, "devices"), _count(requests, "scores")) == (2 * per_refresh, 1)
    for _ in range(3):
        _next_refresh(page)
    assert (_count(requests, "devices"), _count(requests, "scores")) == (5 * per_refresh, 2)
    # Every data call carries the token in its header, none in its URL.
    token = dashboard.api.tokens["viewer"]
    api_calls = [r for r in requests if "/api/v1/" in r.url]
    assert len(api_calls) >= 15
    assert all(r.headers.get("authorization") == f"Bearer {token}" for r in api_calls)
    assert not any(token in r.url for r in requests)
    assert tab.errors == []


def test_phone_width_fits_the_screen_with_device_cards(
    dashboard: Dashboard, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    tab = Tab(context.new_page())
    try:
        tab.sign_in(dashboard, "viewer")
        page = tab.page
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # Devices become one card each, every value labelled with its column ...
        s1 = page.locator("#devices tr[data-key='s1']")
        assert s1.evaluate("r => getComputedStyle(r).display") == "grid"
        load = s1.locator("td").nth(5)
        assert load.evaluate("c => getComputedStyle(c, '::before').content") == '"Load (1 min)"'
        assert load.bounding_box()["x"] + load.bounding_box()["width"] <= 360
        # ... while the leaderboard, a comparison across rows, scrolls inside its own region.
        board = page.locator("[data-board='small-box']")
        assert board.get_attribute("tabindex") == "0"
        assert board.evaluate("r => r.scrollWidth > r.clientWidth")
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        page.screenshot(path=str(dashboard.api.settings.data_dir / "phone.png"), full_page=True)
    finally:
        context.close()


def test_keyboard_alone_signs_in_and_out(dashboard: Dashboard, tab: Tab) -> None:
    page = tab.page
    page.goto(dashboard.url)
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(dashboard.api.tokens["viewer"])
    page.keyboard.press("Enter")
    expect(page.locator("#refreshed")).to_contain_text("Updated at")
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "token"
    assert tab.errors == []


def test_every_text_has_enough_contrast(dashboard: Dashboard, tab: Tab) -> None:
    page = tab.page
    tab.sign_in(dashboard, "viewer")
    page.get_by_role("button", name="Preview (dry run)").click()
    expect(page.locator("#draft tbody tr")).to_have_count(3)
    checked = page.evaluate("document.querySelectorAll('.badge').length")
    assert checked >= 10  # status, flag and plan badges are all on the page
    assert page.evaluate(CONTRAST.read_text()) == []
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate(CONTRAST.read_text()) == []
