"""The chat page (``shared/webchat``) driven in Chromium as a phone user would, by keyboard.

The controller serves it over the gateway and each agent over its own model; both tests
open it on a 360 px wide phone and ask a question that is HTML, to see it shown as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import ARTIFACTS

PHONE = {"width": 360, "height": 740}
MARKUP_QUESTION = '<img src=x onerror="window.__xss = 1">Hi'
COUNT_ANSWER_UPDATES = """() => {
  window.__updates = 0;
  new MutationObserver((records) => {
    for (const r of records) if (r.target.closest?.(".assistant .text")) window.__updates += 1;
  }).observe(document.getElementById("log"), {childList: true, characterData: true, subtree: true});
}"""


@contextmanager
def phone_page(browser: Browser, errors: list[str]) -> Iterator[Page]:
    """A page 360 px wide; console errors and uncaught exceptions go to ``errors``."""
    context = browser.new_context(viewport=PHONE, is_mobile=True)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
    finally:
        context.close()


def ask_markup_by_keyboard(page: Page, answered_by: str, screenshot: str) -> None:
    """Type the HTML question, Enter; the answer streams, and all of it is text, not markup."""
    page.evaluate(COUNT_ANSWER_UPDATES)
    expect(page.get_by_label("Your question")).to_be_focused()
    page.keyboard.type(MARKUP_QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant .meta")).to_contain_text(answered_by, timeout=60_000)
    assert page.locator(".msg.user .text").inner_text() == MARKUP_QUESTION  # shown as text
    assert page.locator("#log img").count() == 0 and page.evaluate("window.__xss") is None
    assert page.evaluate("window.__updates") >= 3  # the answer grew piece by piece
    assert page.locator(".msg.assistant .text").inner_text().strip()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    (ARTIFACTS / "chat").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat" / screenshot), full_page=True)
