"""The gateway over MQTT end to end: ``controller run`` (Mosquitto) and real agents.

``agent-nat`` advertises a chat URL nothing listens on (as a device behind NAT would give
a LAN address): the gateway's connect is refused and it answers over the MQTT link the
agent opened, whole and streamed, and says so. ``agent-lan`` is reachable over HTTP. A
frozen MQTT device costs no answer: its request fails over to the other device.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(300)
MODEL = "m-chat"
FIRST_TOKEN_TIMEOUT_S = 6.0
GATEWAY = {"max_inflight_per_device": 1, "first_token_timeout_s": FIRST_TOKEN_TIMEOUT_S}
SHORT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf_factory: Callable[..., Path]
) -> Iterator[Fleet]:
    """agent-nat alone serving m-chat first (the gateway can only reach it over MQTT)."""
    tmp_path = tmp_path_factory.mktemp("gateway-mqtt")
    classes = tmp_path / "classes"
    write_profiles(classes)
    with Fleet(tmp_path, classes, gateway=json.dumps(GATEWAY)) as running:
        running.wait(running.healthy, 30, "the controller's /healthz")
        running.upload_model(MODEL, tiny_gguf_factory(MODEL))
        closed = f"http://127.0.0.1:{free_port()}"
        running.enroll({"agent-nat": "e2e-big"}, chat_public_url=closed)
        running.assign("agent-nat", MODEL)
        running.wait(lambda: running.serving(MODEL) == {"agent-nat"}, 60, "agent-nat serving")
        yield running


@pytest.fixture
def gateway(fleet: Fleet) -> Iterator[httpx.Client]:
    created = fleet.api.post("/tokens", json={"name": f"k{time.monotonic()}", "role": "client"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    with httpx.Client(base_url=fleet.url + "/v1", headers=headers, timeout=120) as client:
        yield client


def _events(gateway: httpx.Client, body: dict[str, Any]) -> list[Any]:
    with gateway.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["X-Edgefleet-Device"] == "agent-nat"
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in data]


def test_a_device_the_gateway_cannot_dial_answers_over_mqtt(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    whole = gateway.post("/chat/completions", json=SHORT)
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["edgefleet"]["device_id"] == "agent-nat"
    assert body["edgefleet"]["transport"] == "mqtt"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 8

    events = _events(gateway, SHORT)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len(chunks) >= 3  # streamed: role, pieces, the final chunk
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["edgefleet"]["transport"] == "mqtt"
    served = fleet.metric("edgefleet_gateway_requests_total", outcome="ok", device="agent-nat")
    assert served >= 2


def test_a_frozen_mqtt_device_fails_over_to_one_reached_over_http(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    fleet.enroll({"agent-lan": "e2e-big"})
    fleet.assign("agent-lan", MODEL)
    fleet.wait(lambda: fleet.serving(MODEL) == {"agent-nat", "agent-lan"}, 60, "both serving")
    lan = gateway.post("/chat/completions", json=SHORT)  # agent-lan has no p50 yet: it ranks
    assert lan.status_code == 200, lan.text
    failovers = fleet.metric("edgefleet_gateway_failovers_total", device="agent-nat")
    fleet.agents["agent-nat"].send_signal(signal.SIGSTOP)
    results: list[httpx.Response] = []
    try:
        # two at once, so one finds agent-lan full and goes to the frozen agent-nat; a tiny
        # model can finish the first before the second is routed, so up to three rounds
        for _ in range(3):
            threads = [
                threading.Thread(
                    target=lambda: results.append(gateway.post("/chat/completions", json=SHORT))
                )
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            if fleet.metric("edgefleet_gateway_failovers_total", device="agent-nat") > failovers:
                break
    finally:
        fleet.agents["agent-nat"].send_signal(signal.SIGCONT)
    assert [r.status_code for r in results] == [200] * len(results), [r.text for r in results]
    assert {r.headers["X-Edgefleet-Device"] for r in results} == {"agent-lan"}
    assert {r.json()["edgefleet"]["transport"] for r in results} == {"http"}
    assert fleet.metric("edgefleet_gateway_failovers_total", device="agent-nat") == failovers + 1
