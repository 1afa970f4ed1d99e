"""The chat page each agent serves for its own model, in real headless Chromium.

The agent's chat API (real uvicorn, the real tiny model through llama.cpp) with a chat
token: the page at ``/chat/`` asks for it, lists the device's model, streams the answer
piece by piece on a 360 px wide screen, used by keyboard only, and shows a question that
is HTML as text. The same page the controller serves over its gateway (``shared.webchat``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from agent.chat.api import create_chat_app
from agent.chat.metrics import ServingMetrics
from agent.chat.server import ChatServer
from agent.models.serving import ModelHost
from shared.webchat import CONTENT_SECURITY_POLICY
from tests.agent.daemon_support import load_serving
from tests.support.chat_page import ask_markup_by_keyboard, phone_page

pytestmark = pytest.mark.timeout(180)
TOKEN = "chat-token-of-the-clinic-pi"
DEVICE = "pi-clinic-1"


@pytest.fixture
def agent_url(tiny_gguf: Path) -> Iterator[str]:
    host = ModelHost()
    host.swap(load_serving(tiny_gguf))
    app = create_chat_app(host, ServingMetrics(), token=TOKEN, device_id=DEVICE)
    server = ChatServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        host.close()


def test_the_page_is_served_with_the_strict_policy(agent_url: str) -> None:
    page = httpx.get(agent_url + "/chat/")
    assert page.status_code == 200 and "chat.js" in page.text
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "https://" not in page.text + httpx.get(agent_url + "/chat/chat.js").text  # no CDN


def test_the_agents_page_streams_its_models_answer_on_a_phone_by_keyboard(
    agent_url: str, browser: Browser
) -> None:
    errors: list[str] = []
    with phone_page(browser, errors) as page:
        page.goto(agent_url + "/chat/")
        expect(page.get_by_label("Chat key")).to_be_focused()
        page.keyboard.type("not-the-token")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("wrong bearer token")
        page.get_by_label("Chat key").fill("")
        page.keyboard.type(TOKEN)
        page.keyboard.press("Enter")
        expect(page.get_by_label("Model")).to_contain_text("tiny")
        expect(page.get_by_label("Chat key")).to_be_hidden()
        ask_markup_by_keyboard(page, f"answered by {DEVICE} with tiny", "agent-chat-phone.png")
    assert [e for e in errors if "401" not in e] == []  # the wrong key's 401, and nothing else
