"""A failing canary rolls its wave back, every part a real process.

``controller run`` (embedded broker, SQLite, planner loop) and two ``agent run``
of different classes, both serving m-small; ``POST /plans`` moves them to the
better m-big, and the canary fails for real:

- refused: the controller's copy of the small class's profile says 2000 MB, the
  devices' own copies still say 60 MB (a profile raised on one side only). The
  small device's agent refuses m-big (llama.cpp's estimate is over its budget),
  the big one really moves to it; the wave fails and both go back to m-small.
- killed: the big class's canary dies before it acks; the wave times out and is
  rolled back, the small class (nothing to change) is untouched, and the
  restarted agent serves its previous model.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controller.plans.db_world import SHAPES
from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet, judged_quality, wait_for

pytestmark = pytest.mark.timeout(240)
DEVICES = {"agent-small": "e2e-small", "agent-big": "e2e-big"}
CONTROLLER_CLASSES = {"e2e-small": 2000, "e2e-big": 2000}


@pytest.fixture
def drifted(tmp_path: Path) -> Iterator[tuple[Fleet, Path]]:
    """A controller whose e2e-small budget is 2000 MB, and the devices' 60 MB profiles."""
    device_classes = tmp_path / "device-classes"
    write_profiles(device_classes)
    controller_classes = tmp_path / "classes"
    write_profiles(controller_classes, CONTROLLER_CLASSES)
    with Fleet(tmp_path, controller_classes) as fleet:
        yield fleet, device_classes


def _both_on_m_small(fleet: Fleet, gguf: Callable[..., Path], **agent_config: Any) -> None:
    """Both models in the registry (m-big judged better), both agents serving m-small refined."""
    wait_for(fleet.healthy, 30, "the controller's /healthz", fleet.logs)
    for model_id, shape in SHAPES.items():
        fleet.upload_model(model_id, gguf(model_id, **shape))
    fleet.enroll(DEVICES, **agent_config)
    for device_id in DEVICES:
        fleet.assign(device_id, "m-small", refine=True)
    judged_quality(fleet.db_file)


def _plan(fleet: Fleet, plan_id: int) -> dict[str, Any]:
    response = fleet.api.get(f"/plans/{plan_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _settled(fleet: Fleet, plan_id: int) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        detail = _plan(fleet, plan_id)
        return detail if detail["plan"]["params"]["rollout"]["state"] != "running" else None

    return dict(fleet.wait(settled, 60, f"plan {plan_id}'s rollout to settle"))


def _models(fleet: Fleet) -> dict[str, str | None]:
    return {d["id"]: d["model_id"] for d in fleet.api.get("/devices").json()["items"]}


def _command(fleet: Fleet, command_id: str) -> dict[str, Any]:
    response = fleet.api.get(f"/commands/{command_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_canary_refusing_a_model_over_its_memory_rolls_its_wave_back(
    drifted: tuple[Fleet, Path], tiny_gguf_factory: Callable[..., Path]
) -> None:
    fleet, device_classes = drifted
    _both_on_m_small(fleet, tiny_gguf_factory, profiles_dir=str(device_classes))

    applied = fleet.api.post("/plans", json={})
    assert applied.status_code == 202, applied.text
    assert applied.json()["message"] == "2 changes in 1 waves"  # one canary per class
    plan_id = applied.json()["plan"]["id"]
    targets = {a["device_id"]: a["model_id"] for a in applied.json()["assignments"]}
    assert targets == dict.fromkeys(DEVICES, "m-big")

    detail = _settled(fleet, plan_id)
    plan = detail["plan"]
    assert (plan["status"], plan["params"]["rollout"]["state"]) == ("failed", "rolled_back")
    assert plan["params"]["rollout"]["previous"] == dict.fromkeys(DEVICES, ["m-small", "refine:1"])
    failure = plan["reasons"][-1]
    assert failure.startswith("wave 0 failed: agent-small: command error: "), failure
    assert "memory budget is 60 MB" in failure and "agent-big" not in failure
    # The refusal is the agent's own: it kept m-small and said why.
    refused = _command(fleet, f"p{plan_id}-as-agent-small")
    assert refused["status"] == "error" and "memory budget is 60 MB" in refused["reason"]

    # A wave is rolled back whole: the big class's canary had really moved to m-big.
    for command_id in (f"p{plan_id}-as-agent-big", *(f"p{plan_id}-rb-{d}" for d in DEVICES)):
        fleet.wait(lambda c=command_id: "ok" in fleet.ack_statuses(c), 60, f"{command_id} ok")
    statuses = {a["device_id"]: a["status"] for a in _plan(fleet, plan_id)["assignments"]}
    assert statuses == {"agent-small": "failed", "agent-big": "rolled_back"}

    fleet.wait(lambda: _models(fleet) == dict.fromkeys(DEVICES, "m-small"), 30, "m-small again")
    assert {d: fleet.chat_model(d) for d in DEVICES} == dict.fromkeys(DEVICES, "m-small")

    history = fleet.api.get("/plans").json()  # newest first; the planner loop only drafts
    sent = [(p["id"], p["status"], p["reasons"][-1]) for p in history if p["applied_at"]]
    assert sent == [(plan_id, "failed", failure)]


@pytest.fixture
def short_timeout(tmp_path: Path) -> Iterator[Fleet]:
    """A controller that rolls a wave back when it is not acked and healthy within 5 s."""
    classes = tmp_path / "classes"
    write_profiles(classes)
    with Fleet(tmp_path, classes, planner_rollout_timeout_s="5") as fleet:
        yield fleet


def test_canary_killed_mid_wave_times_out_and_restarts_on_its_previous_model(
    short_timeout: Fleet, tiny_gguf_factory: Callable[..., Path]
) -> None:
    fleet = short_timeout
    _both_on_m_small(fleet, tiny_gguf_factory)
    canary = fleet.agents["agent-big"]
    canary.send_signal(signal.SIGSTOP)  # alive and connected, but it will not read its command

    applied = fleet.api.post("/plans", json={})
    assert applied.status_code == 202, applied.text
    assert applied.json()["message"] == "1 changes in 1 waves"
    plan_id = applied.json()["plan"]["id"]
    canary.kill()  # dies in the middle of the wave
    canary.wait(10)

    plan = _settled(fleet, plan_id)["plan"]
    assert (plan["status"], plan["params"]["rollout"]["state"]) == ("failed", "rolled_back")
    assert plan["params"]["rollout"]["waves"] == [["agent-big"]]
    failure = plan["reasons"][-1]
    assert failure.startswith("wave 0 failed: agent-big: no ok ack and healthy metrics after ")
    statuses = {a["device_id"]: a["status"] for a in _plan(fleet, plan_id)["assignments"]}
    assert statuses == {"agent-big": "failed", "agent-small": "unchanged"}
    # The small class had nothing to change: no command, still serving.
    assert fleet.api.get(f"/commands/p{plan_id}-as-agent-small").status_code == 404
    assert fleet.chat_model("agent-small") == "m-small"

    # Restarted, the device gets what the broker kept for it and ends on its previous model.
    fleet.restart_agent("agent-big")
    rollback = f"p{plan_id}-rb-agent-big"
    fleet.wait(lambda: "ok" in fleet.ack_statuses(rollback), 60, f"{rollback} ok")
    fleet.wait(lambda: _models(fleet)["agent-big"] == "m-small", 30, "agent-big on m-small")
    assert fleet.chat_model("agent-big") == "m-small"
    assert _plan(fleet, plan_id)["plan"]["params"]["rollout"]["state"] == "rolled_back"
