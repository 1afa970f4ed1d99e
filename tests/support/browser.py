"""Debian's Chromium driven by playwright: one per test module.

Playwright's sync API marks its event loop as running for as long as it is open, so a
second ``sync_playwright()`` opened meanwhile fails, and so does any ``asyncio.run()``;
every browser test uses the root conftest's ``browser`` fixture, closed after its module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(
    os.environ.get("EDGEFLEET_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Launch Chromium headless; closed on exit."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
