"""Dashboard fixtures: Debian's real Chromium (one per module), driven by playwright, against
the real app on uvicorn with a fleet that reported over a real Mosquitto (one per module)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Browser, Page

from tests.controller.api.conftest import Api
from tests.controller.web.fleet import Dashboard, reported_fleet
from tests.support.browser import ARTIFACTS


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the dashboard tests keep their screenshots ($EDGEFLEET_TEST_ARTIFACTS/dashboard)."""
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf_factory: Callable[..., Path]
) -> Iterator[Dashboard]:
    """A controller whose fleet reported over MQTT; a private broker keeps it to this module."""
    with reported_fleet(tmp_path_factory.mktemp("dashboard"), tiny_gguf_factory) as running:
        yield running


class Served(Protocol):
    """A running controller behind a dashboard: its API (with role tokens) and page address."""

    api: Api

    @property
    def url(self) -> str: ...


@dataclass
class Tab:
    """A fresh browser context (its own sessionStorage) with what its console reported."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def sign_in(self, dashboard: Served, role: str) -> None:
        """Open the dashboard and sign in with the role's token; wait for the first refresh."""
        self.page.goto(dashboard.url)
        self.page.get_by_label("API token").fill(dashboard.api.tokens[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_selector("#refreshed:has-text('Updated at')")


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A new page in its own context; console errors and page errors are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    opened = Tab(page)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(f"page error: {e}"))
    yield opened
    context.close()
