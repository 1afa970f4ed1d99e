"""The device page, quality views, registry and events in real Chromium against a controller
whose fleet reported over MQTT: each renders with data, charts have their points, a viewer
sees no action and the API refuses one, the device page fits 360 px and works by keyboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.controller.web.conftest import Tab
from tests.controller.web.fleet import HISTORY_POINTS, Dashboard


def _open(tab: Tab, dashboard: Dashboard, role: str, address: str, ready: str) -> None:
    tab.sign_in(dashboard, role)
    tab.page.goto(f"{dashboard.url}{address}")
    tab.page.wait_for_selector(ready)


def test_device_page_draws_a_day_of_charts_against_the_budgets(
    dashboard: Dashboard, tab: Tab, screenshots: Path
) -> None:
    tab.sign_in(dashboard, "operator")
    page = tab.page
    page.locator("#devices a", has_text="s1").click()
    expect(page).to_have_url(f"{dashboard.url}#/device/s1")
    page.wait_for_selector("#chart-decode circle.point")
    expect(page.locator("#device-title")).to_have_text("Device s1")
    # every 5-minute sample of the last hour, plus the current report: one point each
    expect(page.locator("#chart-decode circle.point")).to_have_count(HISTORY_POINTS + 1)
    expect(page.locator("#chart-memory circle.point")).to_have_count(HISTORY_POINTS)
    expect(page.locator("#chart-outbox circle.point")).to_have_count(HISTORY_POINTS + 1)
    for chart, budget in (("latency", "budget 60 s"), ("memory", "budget 75 MB")):
        expect(page.locator(f"#chart-{chart} line.budget")).to_have_count(1)
        expect(page.locator(f"#chart-{chart} text.budget-label")).to_have_text(budget)
    expect(page.locator("#chart-temperature rect.span")).to_have_count(1)  # 10 min offline
    expect(page.locator("#device-bench tbody tr")).to_have_count(6)  # 3 categories x 2 modes
    assert tab.errors == []
    page.screenshot(path=str(screenshots / "device.png"), full_page=True)


def test_an_operator_identifies_a_device_and_sees_the_command(
    dashboard: Dashboard, tab: Tab
) -> None:
    _open(tab, dashboard, "operator", "#/device/s2", "#device-facts dt")
    page = tab.page
    page.get_by_role("button", name="Identify (blink 10 s)").click()
    expect(page.locator("#device-action-message")).to_contain_text("Sent identify")
    expect(page.locator("#device-commands tbody tr").first).to_contain_text("identify")


def test_a_viewer_sees_no_device_action_and_the_api_refuses_one(
    dashboard: Dashboard, tab: Tab
) -> None:
    _open(tab, dashboard, "viewer", "#/device/s1", "#chart-decode circle.point")
    expect(tab.page.locator("#device-actions")).to_be_hidden()
    expect(tab.page.get_by_role("button", name="Assign")).to_have_count(0)
    refused = httpx.post(
        f"{dashboard.api.url}/api/v1/commands",
        headers={"Authorization": f"Bearer {dashboard.api.tokens['viewer']}"},
        json={"device_id": "s1", "command": {"type": "identify"}},
    )
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]


def test_device_page_fits_a_phone_and_works_by_keyboard(
    dashboard: Dashboard, tab: Tab, screenshots: Path
) -> None:
    page = tab.page
    page.set_viewport_size({"width": 360, "height": 780})
    tab.sign_in(dashboard, "operator")
    link = page.locator("#devices a", has_text="s1")
    for _ in range(40):  # Tab from the top until the device link has focus
        page.keyboard.press("Tab")
        if link.evaluate("node => node === document.activeElement"):
            break
    else:
        raise AssertionError("the device link is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart-decode circle.point")
    expect(page.locator("#main")).to_be_focused()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
    widths = page.locator("svg.chart").evaluate_all(
        "svgs => svgs.map(s => s.getBoundingClientRect().right)"
    )
    assert widths and max(widths) <= 360
    page.locator("#identify-button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#device-action-message")).to_contain_text("Sent identify")
    page.screenshot(path=str(screenshots / "device-360px.png"), full_page=True)


def test_quality_view_scatters_every_option_with_intervals_budget_and_choice(
    dashboard: Dashboard, tab: Tab, screenshots: Path
) -> None:
    with dashboard.api.client("operator") as client:
        assert client.post("/api/v1/plans/draft", json={}).status_code == 201
        scores = client.get("/api/v1/scores").json()["classes"]
    _open(tab, dashboard, "viewer", "#/quality", "#quality-charts .point")
    page = tab.page
    for cls, rows in scores.items():
        figure = page.locator(f"figure[data-class='{cls}']")
        expect(figure.locator(".point")).to_have_count(len(rows))
        expect(figure.locator("line.interval")).to_have_count(len(rows))
        expect(figure.locator("line.budget")).to_have_count(1)
        predicted = sum(1 for r in rows if r["predicted"])
        assert predicted >= 1  # each class has an option never benchmarked on it
        expect(figure.locator("rect.point.predicted")).to_have_count(predicted)
    expect(page.locator("#quality-charts .chosen-ring")).not_to_have_count(0)
    groups = page.locator("#table3 thead tr").first.locator("th").all_inner_texts()
    spans = [page.locator("#table3 thead tr").first.locator("th").nth(i).get_attribute("colspan")
             for i in range(1, len(groups))]  # fmt: skip
    columns = page.locator("#table3 thead tr").nth(1).locator("th").all_inner_texts()
    # a column per strategy each model was measured with; only m-big was measured voting
    assert list(zip(groups[1:], spans, strict=True)) == [("m-big", "3"), ("m-small", "2")]
    assert columns == ["direct", "refine:1", "vote:5", "direct", "refine:1"]
    expect(page.locator("#table3-suite")).to_have_value("built-in evaluation set")
    expect(page.locator("#table3 tbody tr")).to_have_count(3)  # writing, math, coding
    assert "% (n=" in page.locator("#table3 tbody").inner_text()
    assert tab.errors == []
    page.screenshot(path=str(screenshots / "quality.png"), full_page=True)


def test_registry_lists_models_and_an_operator_uploads_with_progress_and_deletes(
    dashboard: Dashboard, tab: Tab, screenshots: Path, tiny_gguf_factory: Callable[..., Path]
) -> None:
    _open(tab, dashboard, "operator", "#/registry", "#models tbody tr")
    page = tab.page
    small = page.locator("#models tbody tr[data-key='m-small']")
    expect(small).to_contain_text("small-box:")
    expect(small.locator("td").nth(7)).to_contain_text("s1")  # served by s1 and b1
    page.screenshot(path=str(screenshots / "registry.png"), full_page=True)
    upload = tiny_gguf_factory("ui-upload", n_embd=64)
    page.set_input_files("#upload-file", str(upload))
    page.fill("#upload-id", "ui-upload")
    page.get_by_role("button", name="Upload model").click()
    expect(page.locator("#registry-message")).to_contain_text("Uploaded ui-upload")
    expect(page.locator("#models tbody tr[data-key='ui-upload']")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete ui-upload").click()
    expect(page.locator("#registry-message")).to_have_text("Deleted ui-upload.")
    expect(page.locator("#models tbody tr[data-key='ui-upload']")).to_have_count(0)


def test_a_viewer_cannot_upload_or_delete_and_the_api_refuses(
    dashboard: Dashboard, tab: Tab
) -> None:
    _open(tab, dashboard, "viewer", "#/registry", "#models tbody tr")
    expect(tab.page.locator("#upload-form")).to_be_hidden()
    expect(tab.page.locator("[data-delete]")).to_have_count(0)
    refused = httpx.delete(
        f"{dashboard.api.url}/api/v1/models/m-big",
        headers={"Authorization": f"Bearer {dashboard.api.tokens['viewer']}"},
    )
    assert refused.status_code == 403


def test_events_merge_commands_dead_letters_and_plans_with_filters(
    dashboard: Dashboard, tab: Tab, screenshots: Path
) -> None:
    with dashboard.api.client("operator") as client:
        sent = client.post(
            "/api/v1/commands", json={"device_id": "b1", "command": {"type": "identify"}}
        )
        assert sent.status_code == 202, sent.text
    _open(tab, dashboard, "viewer", "#/events", "#events tbody tr")
    page = tab.page
    rows = page.locator("#events tbody tr")
    expect(rows.filter(has_text="dead letter")).not_to_have_count(0)
    expect(rows.filter(has_text="identify sent")).not_to_have_count(0)
    expect(page.locator("#events-counts")).to_contain_text("Dead letters")
    page.screenshot(path=str(screenshots / "events.png"), full_page=True)
    page.select_option("#events-kind", "dead-letter")
    expect(rows.filter(has_text="identify")).to_have_count(0)
    expect(rows.first).to_contain_text("dead letter")
    page.select_option("#events-kind", "command")
    page.fill("#events-device", "b1")
    page.locator("#events-device").press("Enter")
    expect(rows.filter(has_text="s1")).to_have_count(0)
    expect(rows.first).to_contain_text("b1")


SUITE_LINES = [
    '{"suite": "clinic", "version": "2", "description": "our own questions"}',
    '{"id": "j1", "type": "judged", "category": "generic", "question": "Name a fruit."}',
    '{"id": "e1", "type": "exact", "category": "math", "question": "2 + 2 = ?", "answer": "4"}',
]


def test_an_operator_uploads_a_suite_sees_each_bad_line_and_deletes_it(
    dashboard: Dashboard, tab: Tab, tmp_path: Path, screenshots: Path
) -> None:
    _open(tab, dashboard, "operator", "#/registry", "#models tbody tr")
    page = tab.page
    expect(page.locator("#suite-form")).to_be_visible()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*SUITE_LINES, "not json", '{"id": "e2", "type": "exact"}']) + "\n")
    page.set_input_files("#suite-file", str(bad))
    page.fill("#suite-id", "ui-clinic")
    page.get_by_role("button", name="Upload suite").click()
    message = page.locator("#suite-message")
    expect(message).to_contain_text("Suite refused")
    expect(message).to_contain_text("line 4: not JSON")
    expect(message).to_contain_text("line 5:")
    expect(page.locator("#suites tbody tr[data-key='ui-clinic']")).to_have_count(0)

    good = tmp_path / "clinic.jsonl"
    good.write_text("\n".join(SUITE_LINES) + "\n")
    page.set_input_files("#suite-file", str(good))
    page.get_by_role("button", name="Upload suite").click()
    expect(message).to_contain_text("Uploaded suite ui-clinic: 2 items (1 judged, 1 exact), sha256")
    row = page.locator("#suites tbody tr[data-key='ui-clinic']")
    expect(row).to_contain_text("our own questions")
    expect(row).to_contain_text("2 items (1 judged, 1 exact)")
    with dashboard.api.client("operator") as client:
        listed = client.get("/api/v1/suites").json()["items"]
    assert [s["id"] for s in listed] == ["ui-clinic"]
    expect(row.locator("td").nth(2)).to_have_text(listed[0]["sha256"][:16])
    page.screenshot(path=str(screenshots / "suites.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete suite ui-clinic").click()
    expect(message).to_have_text("Deleted suite ui-clinic.")
    expect(row).to_have_count(0)
    expect(page.locator("#suites-empty")).to_be_visible()


def test_a_viewer_sees_suites_but_cannot_upload_or_delete_one(
    dashboard: Dashboard, tab: Tab
) -> None:
    with dashboard.api.client("operator") as client:
        made = client.post(
            "/api/v1/suites",
            params={"suite_id": "ui-viewed"},
            content=("\n".join(SUITE_LINES) + "\n").encode(),
        )
        assert made.status_code == 201, made.text
    try:
        _open(tab, dashboard, "viewer", "#/registry", "#suites tbody tr[data-key='ui-viewed']")
        expect(tab.page.locator("#suite-form")).to_be_hidden()
        expect(tab.page.locator("[data-delete-suite]")).to_have_count(0)
        refused = httpx.delete(
            f"{dashboard.api.url}/api/v1/suites/ui-viewed",
            headers={"Authorization": f"Bearer {dashboard.api.tokens['viewer']}"},
        )
        assert refused.status_code == 403
        assert tab.errors == []
    finally:
        with dashboard.api.client("operator") as client:
            assert client.delete("/api/v1/suites/ui-viewed").status_code == 204
