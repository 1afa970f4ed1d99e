"""The dashboard's security: a static public page under a strict policy, the token kept only
in the tab, refused tokens explained, and hostile device data shown as text, never run."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from controller.web.dashboard import STATIC_DIR
from tests.controller.web.conftest import Dashboard, Tab
from tests.controller.web.fleet import HOSTILE_MODEL, HOSTILE_NAME

STORAGE_KEY = "edgefleet.dashboard.token"


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_page_is_public_static_and_served_under_a_strict_policy(dashboard: Dashboard) -> None:
    root = httpx.get(f"{dashboard.api.url}/", follow_redirects=False)
    assert root.is_redirect and root.headers["location"] == "/dashboard/"
    page = httpx.get(dashboard.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    directives = _directives(policy)
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    script = httpx.get(f"{dashboard.url}js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == policy
    # One external module script, no inline code; the data itself stays behind a token.
    assert re.findall(r"<script[^>]*>", page.text) == ['<script type="module" src="js/main.js">']
    assert httpx.get(f"{dashboard.api.url}/api/v1/devices").status_code == 401


def test_dashboard_files_name_no_other_origin() -> None:
    files = [p for p in STATIC_DIR.rglob("*") if p.suffix in {".html", ".css", ".js", ".svg"}]
    assert len(files) >= 8
    for path in files:
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path


def test_a_bad_token_is_refused_with_the_reason_and_not_kept(
    dashboard: Dashboard, tab: Tab
) -> None:
    page = tab.page
    page.goto(dashboard.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text("Enter an API token.")
    page.get_by_label("API token").fill("eft_not-a-token-of-this-controller-000000")
    page.get_by_label("API token").press("Enter")
    expect(page.locator("#signin-error")).to_have_text("Sign-in failed: unknown or revoked token.")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    assert "eft_" not in page.url
    assert tab.errors and all("status of 401" in e for e in tab.errors), tab.errors


def test_the_token_lives_in_the_tab_only_and_sign_out_forgets_it(
    dashboard: Dashboard, tab: Tab
) -> None:
    page = tab.page
    tab.sign_in(dashboard, "viewer")
    expect(page.locator("#who-text")).to_have_text("Signed in as viewer-1 (viewer)")
    stored = page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')")
    assert stored == dashboard.api.tokens["viewer"]
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    assert dashboard.api.tokens["viewer"] not in page.url
    page.reload()  # the same tab stays signed in
    expect(page.locator("#devices tbody tr")).to_have_count(5)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signin-error")).to_have_text("Signed out.")
    expect(page.locator("#app")).to_be_hidden()
    assert page.locator("#devices tbody tr").count() == 0
    assert page.evaluate("sessionStorage.length") == 0
    assert tab.errors == []


def test_a_token_revoked_mid_session_sends_the_user_back_to_sign_in(
    dashboard: Dashboard, tab: Tab
) -> None:
    with dashboard.api.client("admin") as admin:
        created = admin.post("/api/v1/tokens", json={"name": "night-shift", "role": "viewer"})
        token, token_id = created.json()["token"], created.json()["id"]
        dashboard.api.tokens["night-shift"] = token
        tab.sign_in(dashboard, "night-shift")
        assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    tab.page.get_by_role("button", name="Refresh").click()
    expect(tab.page.locator("#signin-error")).to_have_text(
        "The controller no longer accepts this token (unknown or revoked token). Sign in again."
    )
    assert tab.page.evaluate("sessionStorage.length") == 0


def test_markup_in_device_data_is_shown_as_text_and_never_runs(
    dashboard: Dashboard, tab: Tab
) -> None:
    page = tab.page
    tab.sign_in(dashboard, "operator")
    row = page.locator("#devices tbody tr[data-key='x1']")
    expect(row.locator("td.model")).to_have_text(HOSTILE_MODEL)
    expect(row.locator("th .sub")).to_have_text(HOSTILE_NAME)
    row.locator("th").hover()
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert tab.errors == []
