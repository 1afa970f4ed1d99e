"""The gateway's own refusals, before any device is asked: rate limits, bounds, no device."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller.gateway.settings import GatewaySettings
from shared.chat import MAX_MESSAGES
from tests.controller.api.conftest import Api, start_api

HI = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Api]:
    """The API with a gateway that lets each key send two requests, then one a minute."""
    running = start_api(tmp_path / "data", gateway=GatewaySettings(requests_per_minute=1, burst=2))
    yield running
    running.server.stop()
    running.engine.dispose()


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_do_not(limited: Api) -> None:
    with limited.client("client") as client:
        first = [client.post("/v1/chat/completions", json=HI) for _ in range(2)]
        over = client.post("/v1/chat/completions", json=HI)
    assert [r.json()["error"] for r in first] == ["no_device", "no_device"]
    assert first[0].headers["Retry-After"] == "10"
    assert over.status_code == 429 and over.json()["error"] == "rate_limited"
    assert 50 <= int(over.headers["Retry-After"]) <= 60  # one request a minute
    with limited.client("viewer") as other:
        assert other.post("/v1/chat/completions", json=HI).json()["error"] == "no_device"


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": "Hi"}] * (MAX_MESSAGES + 1)},
        {"messages": [{"role": "tool", "content": "Hi"}]},
        {**HI, "max_tokens": 0},
        {**HI, "strategy": "think-harder"},
    ],
)
def test_malformed_requests_are_refused_before_any_device(limited: Api, body: object) -> None:
    with limited.client("client") as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422, response.text


def test_a_named_model_nobody_serves_is_named_in_the_refusal(limited: Api) -> None:
    with limited.client("client") as client:
        response = client.post("/v1/chat/completions", json={**HI, "model": "m-none"})
    assert response.status_code == 503
    assert "no online device serves model 'm-none'" in response.json()["detail"]


def test_the_chat_page_loads_without_a_token_under_the_dashboards_strict_policy(
    limited: Api,
) -> None:
    for path in ("/chat/", "/chat/chat.js", "/chat/chat.css"):
        response = httpx.get(limited.url + path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    page = httpx.get(limited.url + "/chat/").text
    assert "http://" not in page and "https://" not in page  # offline: nothing from elsewhere
