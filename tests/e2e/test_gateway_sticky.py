"""Sticky routing end to end: a conversation's later turns go to the device of its first.

``controller run`` and two ``agent run`` serving one model, two sequences each. Turn 1
goes to the least loaded device ("home"); with a long answer held open on home, turns 2
and 3 still go there although the other device is idle; once home is killed the next
turn falls back to the other device, and the turn after sticks there.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet

pytestmark = pytest.mark.timeout(300)
DEVICES = {"agent-a": "e2e-big", "agent-b": "e2e-big"}
MODEL = "m-chat"
SHAPE = {"n_embd": 512, "n_layers": 8, "n_ff": 1024}
"""~110 tok/s on one busy thread: a 1024-token answer keeps a device busy for seconds."""
GATEWAY = {"max_inflight_per_device": 2}
STORY = {"max_tokens": 1024, "stream": True}
SHORT = {"model": MODEL, "max_tokens": 8}
STICKY = "edgefleet_gateway_sticky_total"


@pytest.fixture
def fleet(tmp_path: Path, tiny_gguf_factory: Callable[..., Path]) -> Iterator[Fleet]:
    """Both agents serving m-chat, two sequences at once each; two requests a device."""
    classes = tmp_path / "classes"
    write_profiles(classes, parallel=2)
    with Fleet(tmp_path, classes, gateway=json.dumps(GATEWAY)) as running:
        running.wait(running.healthy, 30, "the controller's /healthz")
        running.upload_model(MODEL, tiny_gguf_factory(MODEL, **SHAPE))
        running.enroll(DEVICES)
        for device_id in DEVICES:
            running.assign(device_id, MODEL)
        running.wait(lambda: running.serving(MODEL) == set(DEVICES), 60, "both devices serving")
        yield running


@pytest.fixture
def gateway(fleet: Fleet) -> Iterator[httpx.Client]:
    created = fleet.api.post("/tokens", json={"name": "clinic-desk", "role": "client"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    with httpx.Client(base_url=fleet.url + "/v1", headers=headers, timeout=120) as client:
        yield client


def _turn(gateway: httpx.Client, history: list[dict[str, str]], question: str) -> httpx.Response:
    """Ask ``question`` after ``history``; the answer joins the history, as a client keeps it."""
    history.append({"role": "user", "content": question})
    response = gateway.post("/chat/completions", json={**SHORT, "messages": history})
    assert response.status_code == 200, response.text
    history.append(
        {"role": "assistant", "content": response.json()["choices"][0]["message"]["content"]}
    )
    return response


class HeldStream(threading.Thread):
    """A long streamed answer read to its end in the background; when its last line came."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(daemon=True)
        self.response, self.ended_at = response, 0.0
        self.lines: list[str] = []

    def run(self) -> None:
        self.lines = [line for line in self.response.iter_lines() if line]
        self.ended_at = time.monotonic()


def _sticky(fleet: Fleet) -> dict[str, float]:
    results = ("hit", "unknown", "gone", "full", "failed")
    return {r: fleet.metric(STICKY, result=r) for r in results}


def test_a_conversation_stays_on_its_device_until_that_device_is_gone(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    history = [{"role": "system", "content": "You are a clinic assistant."}]
    first = _turn(gateway, history, "Hi")
    assert first.headers["X-Edgefleet-Routing"] == "least-loaded"
    home = first.headers["X-Edgefleet-Device"]
    (other,) = set(DEVICES) - {home}
    before = _sticky(fleet)

    # A branch of the conversation (the user asks for a story) holds home with a long answer.
    branch = {**STORY, "messages": [*history, {"role": "user", "content": "Tell me a story"}]}
    with gateway.stream("POST", "/chat/completions", json=branch) as story:
        assert story.status_code == 200
        assert story.headers["X-Edgefleet-Device"] == home
        assert story.headers["X-Edgefleet-Routing"] == "sticky"
        held = HeldStream(story)
        held.start()
        for question in ("What about the dosage?", "And for a child?"):
            later = _turn(gateway, history, question)
            assert later.headers["X-Edgefleet-Device"] == home, "went to the idle device"
            assert later.headers["X-Edgefleet-Routing"] == "sticky"
        answered_at = time.monotonic()
        held.join(120)
    assert held.lines[-1] == "data: [DONE]"
    assert held.ended_at > answered_at  # home held the story while turns 2 and 3 came

    fleet.agents[home].send_signal(signal.SIGKILL)
    fleet.agents[home].wait(10)
    fallback = _turn(gateway, history, "Is it safe?")
    assert fallback.headers["X-Edgefleet-Device"] == other
    # The gateway has seen home's last will (gone) or tried it and been refused (failed).
    assert fallback.headers["X-Edgefleet-Routing"] in ("fallback-gone", "fallback-failed")
    after_fallback = _turn(gateway, history, "Thank you")
    assert after_fallback.headers["X-Edgefleet-Device"] == other
    assert after_fallback.headers["X-Edgefleet-Routing"] == "sticky"

    counted = {k: v - before[k] for k, v in _sticky(fleet).items()}
    assert counted["hit"] == 4  # the story, turns 2 and 3, and the turn after the fallback
    assert counted["gone"] + counted["failed"] == 1
    assert counted["unknown"] == counted["full"] == 0
