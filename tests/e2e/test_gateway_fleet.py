"""The gateway end to end: ``controller run`` and two ``agent run`` serving one model.

A client key chats through the controller's ``/v1/chat/completions`` (whole and
streamed) and is refused everywhere else; requests spread over the devices by load;
with every device at the gateway's bound (one open request each here) the next request
gets 429 + Retry-After; a hung device (SIGSTOP: its socket still accepts) and a killed
one (SIGKILL) cost no answer, the other device gives it; one killed mid-stream has its
answer continued by the other on the same stream (or, the other hung, an error event);
the chat page works on the controller and on an agent; ``/metrics`` accounts it all.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.factories.profiles import write_profiles
from tests.support.chat_page import ask_markup_by_keyboard, phone_page
from tests.support.fleet import Fleet

pytestmark = pytest.mark.timeout(300)
DEVICES = {"agent-a": "e2e-big", "agent-b": "e2e-big"}
MODEL = "m-chat"
SHAPE = {"n_embd": 512, "n_layers": 8, "n_ff": 1024}
"""~110 tok/s on one busy thread: a 1024-token answer keeps a device busy for seconds."""
FIRST_TOKEN_TIMEOUT_S = 6.0
GATEWAY = {"max_inflight_per_device": 1, "first_token_timeout_s": FIRST_TOKEN_TIMEOUT_S}
SHORT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
LONG: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "max_tokens": 1024,
}


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf_factory: Callable[..., Path]
) -> Iterator[Fleet]:
    """Both agents serving m-chat; the gateway holds one request per device at most."""
    tmp_path = tmp_path_factory.mktemp("gateway-fleet")
    classes = tmp_path / "classes"
    write_profiles(classes)
    with Fleet(tmp_path, classes, gateway=json.dumps(GATEWAY)) as running:
        running.wait(running.healthy, 30, "the controller's /healthz")
        running.upload_model(MODEL, tiny_gguf_factory(MODEL, **SHAPE))
        running.enroll(DEVICES)
        for device_id in DEVICES:
            running.assign(device_id, MODEL)
        running.wait(lambda: running.serving(MODEL) == set(DEVICES), 60, "both devices serving")
        yield running


@pytest.fixture(scope="module")
def client_key(fleet: Fleet) -> str:
    created = fleet.api.post("/tokens", json={"name": "clinic-desk", "role": "client"})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


@pytest.fixture
def gateway(fleet: Fleet, client_key: str) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway with the client key, as an OpenAI SDK would call it."""
    headers = {"Authorization": f"Bearer {client_key}"}
    with httpx.Client(base_url=fleet.url + "/v1", headers=headers, timeout=120) as client:
        yield client


def _stream(gateway: httpx.Client, body: dict[str, Any]) -> tuple[int, dict[str, str], list[Any]]:
    """Status, headers and decoded events of a streamed chat (``[DONE]`` kept as a string)."""
    with gateway.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, dict(response.headers), [response.json()]
        events = [
            line[6:] if line == "data: [DONE]" else json.loads(line[6:])
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
        return 200, dict(response.headers), events


def test_models_lists_auto_and_the_served_model(gateway: httpx.Client) -> None:
    listed = gateway.get("/models")
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()["data"]] == ["auto", MODEL]


def test_a_whole_answer_names_the_device_that_gave_it(gateway: httpx.Client) -> None:
    response = gateway.post("/chat/completions", json={**SHORT, "model": MODEL})
    assert response.status_code == 200, response.text
    answer = response.json()
    device = response.headers["X-Edgefleet-Device"]
    assert device in DEVICES and answer["edgefleet"]["device_id"] == device
    assert answer["model"] == MODEL and answer["choices"][0]["message"]["content"]
    assert 1 <= answer["usage"]["completion_tokens"] <= SHORT["max_tokens"]


def test_a_streamed_answer_arrives_in_chunks_and_ends_once(gateway: httpx.Client) -> None:
    status, headers, events = _stream(gateway, {**SHORT, "model": "auto"})
    assert status == 200, events
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert len([p for p in pieces if p]) >= 2  # token by token, not one block
    assert chunks[-1]["edgefleet"]["device_id"] == headers["x-edgefleet-device"]
    assert chunks[-1]["usage"]["completion_tokens"] == SHORT["max_tokens"]
    auto = chunks[-1]["edgefleet"]["auto"]  # "Hi": no category's words; nothing measured here
    assert headers["x-edgefleet-auto"] == auto["kind"] == "generic" and auto["model"] == MODEL
    assert auto["reason"] == "no served model is measured in generic: the least loaded"


def test_a_client_key_is_refused_on_operator_routes(fleet: Fleet, client_key: str) -> None:
    with fleet.client(client_key) as client:
        assert client.get("/devices").status_code == 403
        sent = client.post("/commands", json={"device_id": "agent-a", "command": {}})
        assert sent.status_code == 403
        assert client.get(f"/models/{MODEL}/file").status_code == 403
        assert client.post("/tokens", json={"name": "x", "role": "admin"}).status_code == 403


def test_the_chat_page_streams_an_answer_on_a_phone_by_keyboard(
    fleet: Fleet, client_key: str, browser: Browser
) -> None:
    errors: list[str] = []
    with phone_page(browser, errors) as page:
        page.goto(fleet.url + "/chat/")
        page.get_by_label("Chat key").fill(client_key)
        page.keyboard.press("Enter")
        expect(page.get_by_label("Model")).to_contain_text(MODEL)
        expect(page.get_by_label("Chat key")).to_be_hidden()
        ask_markup_by_keyboard(page, "answered by agent-", "chat-phone.png")
        expect(page.locator(".msg.assistant .meta")).to_contain_text(MODEL)
    assert errors == []


def test_an_agent_without_a_chat_token_serves_its_page_with_no_key_asked(
    fleet: Fleet, browser: Browser
) -> None:
    """A real ``agent run`` (no ``chat_token`` here): its /chat/ page opens on its model."""
    errors: list[str] = []
    with phone_page(browser, errors) as page:
        page.goto(f"http://127.0.0.1:{fleet.chat_ports['agent-b']}/chat/")
        expect(page.get_by_label("Model")).to_contain_text(MODEL)
        expect(page.get_by_label("Chat key")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        ask_markup_by_keyboard(page, f"answered by agent-b with {MODEL}", "agent-run-phone.png")
    assert errors == []


def test_with_every_device_at_its_bound_the_next_request_gets_429(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    with ExitStack() as held:
        opened = [  # two long streams, held open after their first token
            held.enter_context(
                gateway.stream("POST", "/chat/completions", json={**LONG, "stream": True})
            )
            for _ in DEVICES
        ]
        assert [r.status_code for r in opened] == [200, 200]
        assert {r.headers["X-Edgefleet-Device"] for r in opened} == set(DEVICES)
        refused = gateway.post("/chat/completions", json=SHORT)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "busy"
        assert int(refused.headers["Retry-After"]) >= 1
    # Closing the streams frees the devices (the gateway's count falls as its relay ends).
    fleet.wait(
        lambda: gateway.post("/chat/completions", json=SHORT).status_code == 200,
        60,
        "a device free again",
    )


def test_a_hung_device_costs_no_answer(fleet: Fleet, gateway: httpx.Client) -> None:
    """Two concurrent requests: one goes to each device; the frozen one's goes to the other."""
    failovers = fleet.metric("edgefleet_gateway_failovers_total", device="agent-a")
    fleet.agents["agent-a"].send_signal(signal.SIGSTOP)
    results: list[httpx.Response] = []
    try:
        body = {**LONG, "max_tokens": 64}
        threads = [
            threading.Thread(
                target=lambda: results.append(gateway.post("/chat/completions", json=body))
            )
            for _ in range(2)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        elapsed = time.monotonic() - started
    finally:
        fleet.agents["agent-a"].send_signal(signal.SIGCONT)
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    assert {r.headers["X-Edgefleet-Device"] for r in results} == {"agent-b"}
    assert fleet.metric("edgefleet_gateway_failovers_total", device="agent-a") == failovers + 1
    assert elapsed >= FIRST_TOKEN_TIMEOUT_S  # the frozen device was waited for, then left


def test_requests_are_accounted_per_device_in_metrics(fleet: Fleet) -> None:
    for device_id in DEVICES:
        assert fleet.metric("edgefleet_gateway_requests_total", outcome="ok", device=device_id) >= 1
    assert fleet.metric("edgefleet_gateway_requests_total", outcome="busy") >= 1
    completion = fleet.metric("edgefleet_gateway_tokens_total", kind="completion", model=MODEL)
    assert completion >= SHORT["max_tokens"] * 2
    assert fleet.metric("edgefleet_gateway_latency_seconds_count", model=MODEL) >= 4


def test_a_killed_device_costs_no_answer(fleet: Fleet, gateway: httpx.Client) -> None:
    agent = fleet.agents["agent-a"]
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    for _ in range(3):  # whether the gateway tries the dead device or already knows it is gone
        response = gateway.post("/chat/completions", json=SHORT)
        assert response.status_code == 200, response.text
        assert response.headers["X-Edgefleet-Device"] == "agent-b"
    fleet.wait(lambda: fleet.serving(MODEL) == {"agent-b"}, 60, "agent-a offline (its last will)")
    assert [m["id"] for m in gateway.get("/models").json()["data"]] == ["auto", MODEL]


def _events_after_a_kill(
    fleet: Fleet, gateway: httpx.Client, *, after_pieces: int, hold: bool = False
) -> tuple[str, list[Any]]:
    """Stream LONG, SIGKILL its device after ``after_pieces`` answer chunks: the device, events.

    With ``hold`` the other device is SIGSTOPped just before the kill, resumed at the end.
    """
    with gateway.stream("POST", "/chat/completions", json={**LONG, "stream": True}) as response:
        assert response.status_code == 200
        answering = response.headers["X-Edgefleet-Device"]
        held = next(d for d in DEVICES if d != answering) if hold else None
        events: list[Any] = []
        lines = (line[6:] for line in response.iter_lines() if line.startswith("data: "))
        for data in lines:
            events.append(data if data == "[DONE]" else json.loads(data))
            if sum(1 for e in events if _piece(e)) == after_pieces:
                break
        if held is not None:
            fleet.agents[held].send_signal(signal.SIGSTOP)
        fleet.agents[answering].send_signal(signal.SIGKILL)
        try:
            events += [data if data == "[DONE]" else json.loads(data) for data in lines]
        finally:
            if held is not None:
                fleet.agents[held].send_signal(signal.SIGCONT)
    return answering, events


def _both_serving(fleet: Fleet) -> None:
    """Restart the agents an earlier test killed; wait until both serve the model."""
    for device_id, agent in fleet.agents.items():
        if agent.poll() is not None:
            fleet.restart_agent(device_id)
    fleet.wait(lambda: fleet.serving(MODEL) == set(DEVICES), 60, "both devices on m-chat")


def _piece(event: Any) -> str:
    return (event["choices"][0]["delta"].get("content") or "") if "choices" in event else ""


def test_a_device_killed_mid_answer_is_continued_by_the_other_on_the_same_stream(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    """The client gets one answer: the killed device's text once, then the other's rest.

    At temperature 0 the rest is exactly what one device alone answers after that text
    (the continuation asked again, unstreamed). Against the uncut answer the stitched
    one agrees at least up to the cut; past it they may part, since the cut text is
    tokenised afresh and the tiny model's vocabulary of random pieces may split it
    into other tokens than the ones generated (a real model's words re-tokenise the
    same: the SmolLM2 test in tests/agent asserts the uncut answer whole there).
    """
    _both_serving(fleet)
    status, _, whole = _stream(gateway, LONG)  # streamed: whole, it outlasts the 6 s timeout
    assert status == 200 and whole[-1] == "[DONE]", whole[-2:]
    uncut = "".join(_piece(e) for e in whole[:-1])
    continued = fleet.metric("edgefleet_gateway_continuations_total", outcome="same_model")
    answering, events = _events_after_a_kill(fleet, gateway, after_pieces=1)
    other = next(d for d in DEVICES if d != answering)
    killed_tokens = fleet.metric(
        "edgefleet_gateway_tokens_total", kind="completion", device=answering
    )

    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1, events[-3:]
    assert not any("error" in e for e in events if isinstance(e, dict))
    final = events[-2]
    assert final["edgefleet"]["device_id"] == other
    handover = final["edgefleet"]["continued"]
    assert handover == {
        "from_device": answering,
        "to_device": other,
        "at_chars": handover["at_chars"],
        "model": MODEL,
    }
    pieces = [_piece(e) for e in events[:-1] if isinstance(e, dict)]
    text, cut = "".join(pieces), handover["at_chars"]
    assert len(pieces[0]) <= cut < len(text)  # the client had read a piece before the kill
    assert len({e["id"] for e in events[:-1]}) == 1  # one answer, one id
    assert text[:cut] == uncut[:cut]  # the killed device's text, sent once

    relayed = sum(1 for p, end in _ends(pieces) if p and end <= cut)
    status, _, alone = _stream(
        gateway,
        {
            **LONG,
            "messages": [*LONG["messages"], {"role": "assistant", "content": text[:cut]}],
            "continue_final_message": True,
            "max_tokens": LONG["max_tokens"] - relayed,
        },
    )
    assert status == 200 and alone[-1] == "[DONE]", alone[-2:]
    assert text[cut:] == "".join(_piece(e) for e in alone[:-1])
    completion = alone[-2]["usage"]["completion_tokens"]
    assert final["usage"]["completion_tokens"] == relayed + completion

    assert fleet.metric("edgefleet_gateway_continuations_total", outcome="same_model") == (
        continued + 1
    )
    assert killed_tokens >= relayed  # the killed device's tokens are accounted too


def _ends(pieces: list[str]) -> list[tuple[str, int]]:
    """Each piece with the length of the text up to its end."""
    ends, total = [], 0
    for piece in pieces:
        total += len(piece)
        ends.append((piece, total))
    return ends


def test_a_device_killed_mid_answer_with_no_device_to_continue_ends_with_an_error(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    """The other device hangs (SIGSTOP) when the answering one is killed: no second answer."""
    _both_serving(fleet)
    cut = fleet.metric("edgefleet_gateway_requests_total", outcome="cut")
    none = fleet.metric("edgefleet_gateway_continuations_total", outcome="none")
    _, events = _events_after_a_kill(fleet, gateway, after_pieces=1, hold=True)
    assert "[DONE]" not in events
    assert "failed mid-answer" in events[-1]["error"]["message"]
    assert not any("edgefleet" in e for e in events)  # no final chunk of any device
    assert fleet.metric("edgefleet_gateway_requests_total", outcome="cut") == cut + 1
    assert fleet.metric("edgefleet_gateway_continuations_total", outcome="none") == none + 1
