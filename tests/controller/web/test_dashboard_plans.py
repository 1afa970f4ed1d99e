"""Plans in a real browser: a viewer's dry run with its reasons, an operator's stored draft,
who may apply it, the rollout and the history, each checked against what the API says."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.controller.web.conftest import Dashboard, Tab


def _draft_on_page(tab: Tab, dashboard: Dashboard) -> int:
    """Click "Compute a new draft" (an operator) and return the stored plan's id."""
    page = tab.page
    page.get_by_role("button", name="Compute a new draft").click()
    expect(page.locator("#plan-message")).to_contain_text("Drafted plan")
    text = page.locator("#plan-message").inner_text()
    plan_id = int(text.removeprefix("Drafted plan ").split(":")[0])
    expect(page.locator("#draft-summary")).to_contain_text(f"Draft plan {plan_id} ")
    stored = _plan(dashboard, plan_id)["plan"]
    assert (stored["status"], stored["created_by"]) == ("draft", "operator-1")
    return plan_id


def _api_get(dashboard: Dashboard, path: str) -> Any:
    with dashboard.api.client("viewer") as client:
        response = client.get(f"/api/v1/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def _plan(dashboard: Dashboard, plan_id: int) -> dict[str, Any]:
    return _api_get(dashboard, f"plans/{plan_id}")  # type: ignore[no-any-return]


def _history(dashboard: Dashboard) -> list[tuple[int, str, str]]:
    return [(p["id"], p["status"], p["created_by"]) for p in _api_get(dashboard, "plans")]


def _cells(row: Locator) -> list[str]:
    return [c.strip() for c in row.locator("th, td").all_inner_texts()]


def _assert_draft_table_shows(page: Page, detail: dict[str, Any]) -> None:
    """Each device's choice, planner's note, runner-up and rejections, as the API has them."""
    expect(page.locator("#draft tbody tr")).to_have_count(len(detail["assignments"]))
    for assignment in detail["assignments"]:
        note, *rest = assignment["reasons"]
        runner = next(r for r in rest if r.startswith("runner-up: "))
        rejected = [r for r in rest if r != runner]
        row = page.locator(f"#draft tr[data-key='{assignment['device_id']}']")
        cells = _cells(row)
        strategy = assignment["strategy"]
        label = assignment["model_id"] + ("" if strategy == "direct" else f" {strategy}")
        assert cells[2] == f"{label}\n{note}"
        assert cells[4] == assignment["status"]
        assert cells[5] == runner.removeprefix("runner-up: ")
        assert row.locator("td").nth(5).locator("li").all_inner_texts() == rejected


def _expect_dry_run_shown(page: Page) -> None:
    expect(page.locator("#draft-title")).to_have_text("Dry run (not stored)")
    expect(page.locator("#draft-summary")).to_contain_text("Dry run for viewer-1 at ")
    expect(page.locator("#draft-summary")).to_contain_text(
        "No plan was created and nothing can be applied from it."
    )


def test_viewer_previews_a_dry_run_with_its_reasons_and_stores_nothing(
    dashboard: Dashboard, tab: Tab
) -> None:
    tab.sign_in(dashboard, "viewer")
    page = tab.page
    before = _history(dashboard)
    expect(page.get_by_role("button", name="Compute a new draft")).to_have_count(0)
    preview = page.get_by_role("button", name="Preview (dry run)")
    expect(preview).to_have_accessible_description(re.compile(r"^A preview is a dry run: "))
    preview.click()
    expect(page.locator("#plan-message")).to_contain_text("Dry run done, nothing stored: ")
    _expect_dry_run_shown(page)
    _assert_draft_table_shows(page, _api_get(dashboard, "plans/draft"))
    # A small box cannot hold the big model, and the page says why with the numbers.
    s2_reasons = page.locator("#draft tr[data-key='s2'] li").all_inner_texts()
    assert any(r.startswith("m-big: needs ") and "budget" in r for r in s2_reasons), s2_reasons
    assert _history(dashboard) == before  # neither the page's dry run nor ours stored a plan
    apply = page.locator("#apply-button")
    expect(apply).to_be_disabled()
    expect(apply).to_have_accessible_description(
        "Applying a plan needs the operator role; your token has viewer."
    )
    # The refresh keeps the dry run on show, even when a stored draft appears meanwhile.
    with dashboard.api.client("operator") as client:
        stored = client.post("/api/v1/plans/draft", json={}).json()["plan"]["id"]
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#history tbody tr").first).to_have_attribute("data-key", str(stored))
    _expect_dry_run_shown(page)
    expect(apply).to_be_disabled()
    page.get_by_role("button", name="Close the dry run").click()
    expect(page.locator("#draft-title")).to_have_text("Current draft")
    expect(page.locator("#draft-summary")).to_contain_text(f"Draft plan {stored} by operator-1: ")
    expect(page.get_by_role("button", name="Close the dry run")).to_be_hidden()
    assert tab.errors == []


def test_operator_applies_the_draft_and_follows_it_in_rollout_and_history(
    dashboard: Dashboard, tab: Tab
) -> None:
    tab.sign_in(dashboard, "operator")
    page = tab.page
    plan_id = _draft_on_page(tab, dashboard)
    changes = {a["device_id"] for a in _plan(dashboard, plan_id)["assignments"]
               if a["status"] == "change"}  # fmt: skip
    apply = page.get_by_role("button", name=f"Apply draft plan {plan_id}")
    expect(apply).to_be_enabled()
    page.once("dialog", lambda dialog: dialog.accept())
    apply.click()
    expect(page.locator("#plan-message")).to_contain_text(
        f"Plan {plan_id} applied: {len(changes)} changes in "
    )
    detail = _plan(dashboard, plan_id)
    rollout = detail["plan"]["params"]["rollout"]
    expect(page.locator("#rollout-summary")).to_have_text(
        f"Plan {plan_id}: wave 1 of {len(rollout['waves'])}, running; "
        f"0 of {len(changes)} devices done."
    )
    steps = page.locator("#rollout tbody tr")
    expect(steps).to_have_count(len(changes))
    on_page = {r.get_attribute("data-key"): _cells(r)[2] for r in steps.all()}
    in_api = {a["device_id"]: a["status"] for a in detail["assignments"]
              if a["device_id"] in changes}  # fmt: skip
    assert {d: s.split()[0] for d, s in on_page.items()} == in_api
    assert set(rollout["waves"][0]) == {d for d, s in in_api.items() if s == "sent"}
    first = page.locator("#history tbody tr").first
    assert _cells(first)[:2] == [str(plan_id), "applied"]
    assert _cells(first)[3] == "operator-1"
    expect(page.locator("#apply-button")).to_be_disabled()
    expect(page.locator("#apply-reason")).to_have_text(
        "There is no draft to apply: compute one first."
    )
    assert tab.errors == []


def test_applying_an_already_applied_plan_shows_the_api_refusal(
    dashboard: Dashboard, tab: Tab
) -> None:
    tab.sign_in(dashboard, "operator")
    page = tab.page
    plan_id = _draft_on_page(tab, dashboard)
    with dashboard.api.client("operator") as client:  # someone else applies it first
        assert client.post("/api/v1/plans", json={"plan_id": plan_id}).status_code == 202
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Apply draft plan {plan_id}").click()
    expect(page.locator("#plan-message")).to_have_text(
        f"Plan {plan_id} was not applied: plan {plan_id} is not a draft"
    )
    expect(page.locator("#plan-message")).to_have_class("message error")
