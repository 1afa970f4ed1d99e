"""A failing canary rolls its wave back, every part a real process.

The controller's copy of the small class's profile says 2000 MB, the devices'
own copies still say 60 MB (a profile raised on one side only). The planner
believes m-big fits both classes and sends it to each class's canary; the
small device's agent refuses it for real (llama.cpp's estimate is over its
budget), the big one downloads and serves it. The wave fails, both devices
are told to serve m-small again, and the plan's history says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controller.planner.db_world import SHAPES
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


def _plan(fleet: Fleet, plan_id: int) -> dict[str, Any]:
    response = fleet.api.get(f"/plans/{plan_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _command(fleet: Fleet, command_id: str) -> dict[str, Any]:
    response = fleet.api.get(f"/commands/{command_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_canary_refusing_a_model_over_its_memory_rolls_its_wave_back(
    drifted: tuple[Fleet, Path], tiny_gguf_factory: Callable[..., Path]
) -> None:
    fleet, device_classes = drifted
    wait_for(fleet.healthy, 30, "the controller's /healthz", fleet.logs)
    for model_id, shape in SHAPES.items():
        fleet.upload_model(model_id, tiny_gguf_factory(model_id, **shape))
    fleet.enroll(DEVICES, profiles_dir=str(device_classes))
    for device_id in DEVICES:
        fleet.assign(device_id, "m-small")
    judged_quality(fleet.db_file)

    applied = fleet.api.post("/plans", json={})
    assert applied.status_code == 202, applied.text
    assert applied.json()["message"] == "2 changes in 1 waves"  # one canary per class
    plan_id = applied.json()["plan"]["id"]
    targets = {a["device_id"]: a["model_id"] for a in applied.json()["assignments"]}
    assert targets == dict.fromkeys(DEVICES, "m-big")

    def settled() -> dict[str, Any] | None:
        detail = _plan(fleet, plan_id)
        return detail if detail["plan"]["params"]["rollout"]["state"] != "running" else None

    detail = fleet.wait(settled, 60, "the canary wave to settle")
    plan = detail["plan"]
    assert (plan["status"], plan["params"]["rollout"]["state"]) == ("failed", "rolled_back")
    assert plan["params"]["rollout"]["previous"] == dict.fromkeys(DEVICES, ["m-small", False])
    failure = plan["reasons"][-1]
    assert failure.startswith("wave 0 failed: agent-small: command error: "), failure
    assert "memory budget is 60 MB" in failure and "agent-big" not in failure
    # The refusal is the agent's own: it kept m-small and said why.
    refused = _command(fleet, f"p{plan_id}-as-agent-small")
    assert refused["status"] == "error" and "memory budget is 60 MB" in refused["reason"]

    # A wave is rolled back whole: the big class's canary had really moved to m-big.
    for device_id in DEVICES:
        for kind in ("as", "rb"):
            if (device_id, kind) == ("agent-small", "as"):
                continue
            command_id = f"p{plan_id}-{kind}-{device_id}"
            fleet.wait(lambda c=command_id: "ok" in fleet.ack_statuses(c), 60, f"{command_id} ok")
    statuses = {a["device_id"]: a["status"] for a in _plan(fleet, plan_id)["assignments"]}
    assert statuses == {"agent-small": "failed", "agent-big": "rolled_back"}

    def back_on_m_small() -> bool:
        items = fleet.api.get("/devices").json()["items"]
        return {d["id"]: d["model_id"] for d in items} == dict.fromkeys(DEVICES, "m-small")

    fleet.wait(back_on_m_small, 30, "both devices reporting m-small again")
    assert {d: fleet.chat_model(d) for d in DEVICES} == dict.fromkeys(DEVICES, "m-small")

    history = fleet.api.get("/plans").json()  # newest first; the planner loop only drafts
    sent = [(p["id"], p["status"], p["reasons"][-1]) for p in history if p["applied_at"]]
    assert sent == [(plan_id, "failed", failure)]
