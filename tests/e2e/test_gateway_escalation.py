"""Escalation end to end: ``controller run``, one agent serving m-small, one serving m-big.

m-big measured better (judged runs in the database), so an answer of m-small whose
confidence (``vote:2`` agreement) is below the threshold is asked again on the m-big
device, and the reply says so. The threshold decides deterministically: above every
possible confidence (2.0) every unsure-or-not answer escalates; at 0 none does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.controller.plans.db_world import SHAPES
from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet, judged_quality

pytestmark = pytest.mark.timeout(300)
DEVICES = {"agent-small": "e2e-big", "agent-big": "e2e-big"}
SERVES = {"agent-small": "m-small", "agent-big": "m-big"}
GATEWAY = {"escalation": {"enabled": True, "threshold": 2.0}}
ASK = {
    "model": "m-small",
    "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    "max_tokens": 4,
    "strategy": "vote:2",
    "escalate": True,
}


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf_factory: Callable[..., Path]
) -> Iterator[Fleet]:
    tmp_path = tmp_path_factory.mktemp("gateway-escalation")
    classes = tmp_path / "classes"
    write_profiles(classes)
    running = Fleet(tmp_path, classes, gateway=json.dumps(GATEWAY))
    with running:
        running.wait(running.healthy, 30, "the controller's /healthz")
        for model_id in set(SERVES.values()):
            running.upload_model(model_id, tiny_gguf_factory(model_id, **SHAPES[model_id]))
        running.enroll(DEVICES)
        for device_id, model_id in SERVES.items():
            running.assign(device_id, model_id)
        judged_quality(running.db_file)
        yield running


@pytest.fixture(scope="module")
def gateway(fleet: Fleet) -> Iterator[httpx.Client]:
    created = fleet.api.post("/tokens", json={"name": "desk", "role": "client"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    with httpx.Client(base_url=fleet.url + "/v1", headers=headers, timeout=120) as client:
        yield client


def _threshold(fleet: Fleet, value: float | None) -> None:
    response = fleet.api.put("/gateway/escalation", json={"threshold": value})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "enabled": True,
        "threshold": value,
        "source": "operator",
        "calibrated": False,
    }


def test_an_unsure_answer_is_answered_again_by_the_stronger_device(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    _threshold(fleet, 2.0)
    before = fleet.metric("edgefleet_gateway_escalations_total", outcome="escalated")
    small_ok = fleet.metric("edgefleet_gateway_requests_total", outcome="ok", device="agent-small")
    response = gateway.post("/chat/completions", json=ASK)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert response.headers["X-Edgefleet-Device"] == "agent-big"
    assert response.headers["X-Edgefleet-Escalated-From"] == "agent-small"
    assert response.headers["X-Edgefleet-Routing"] == "escalated"
    assert answer["model"] == "m-big" and answer["edgefleet"]["device_id"] == "agent-big"
    escalated = answer["edgefleet"]["escalated"]
    assert escalated["from_model"] == "m-small" and escalated["from_device"] == "agent-small"
    assert escalated["threshold"] == 2.0 and 0 <= escalated["confidence"] <= 1
    assert answer["edgefleet"]["strategy"] != "vote:2"  # the strong device's own strategy
    after = fleet.metric("edgefleet_gateway_escalations_total", outcome="escalated")
    assert after == before + 1
    # Both answers' device time is accounted: the small one's too.
    assert (
        fleet.metric("edgefleet_gateway_requests_total", outcome="ok", device="agent-small")
        == small_ok + 1
    )


def test_a_confident_answer_stays_with_the_small_device(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    _threshold(fleet, 0.0)  # no confidence is below 0
    response = gateway.post("/chat/completions", json=ASK)
    assert response.status_code == 200, response.text
    assert response.headers["X-Edgefleet-Device"] == "agent-small"
    assert "X-Edgefleet-Escalated-From" not in response.headers
    answer = response.json()
    assert "escalated" not in answer["edgefleet"] and "confidence" in answer["edgefleet"]


def test_only_requests_that_ask_for_it_and_fit_their_budget_escalate(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    _threshold(fleet, 2.0)
    unasked = gateway.post("/chat/completions", json={**ASK, "escalate": False})
    assert unasked.status_code == 200, unasked.text
    assert unasked.headers["X-Edgefleet-Device"] == "agent-small"
    before = fleet.metric("edgefleet_gateway_escalations_total", outcome="no_stronger")
    hurried = gateway.post("/chat/completions", json={**ASK, "latency_budget_ms": 1})
    assert hurried.status_code == 200, hurried.text
    assert hurried.headers["X-Edgefleet-Device"] == "agent-small"  # no device answers in 1 ms
    assert fleet.metric("edgefleet_gateway_escalations_total", outcome="no_stronger") == before + 1


def test_the_threshold_is_read_by_viewers_and_set_only_by_operators(
    fleet: Fleet, gateway: httpx.Client
) -> None:
    viewer = fleet.api.post("/tokens", json={"name": "watcher", "role": "viewer"}).json()["token"]
    with fleet.client(viewer) as client:
        shown = client.get("/gateway/escalation")
        assert shown.status_code == 200 and shown.json()["enabled"] is True
        assert client.put("/gateway/escalation", json={"threshold": 0.5}).status_code == 403
    refused = fleet.api.put("/gateway/escalation", json={"threshold": 5})
    assert refused.status_code == 422
    client_key = gateway.headers["Authorization"].removeprefix("Bearer ")
    with fleet.client(client_key) as client:
        assert client.get("/gateway/escalation").status_code == 403
