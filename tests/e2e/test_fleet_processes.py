"""The default deployment end to end, every part a real process.

``python -m shared.cli controller run`` (embedded amqtt broker, SQLite file,
planner loop) and two ``python -m shared.cli agent run`` of different device
classes, enrolled and fed models only through the HTTP API: devices come
online, ``POST /profiling`` and a ``bench`` command have a device fetch the
candidates, the fleet's reference and its judge (the real Gemma-3-270M, a base
model grading by digit probabilities) from the registry, the judged results
give the leaderboard real quality numbers, ``POST /plans`` gives each device a
model that fits, the agents download it (with their MQTT login) and their
chat APIs answer with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.fleet import Fleet, wait_for

pytestmark = pytest.mark.timeout(240)
# "m-small" needs ~53 MB by the GGUF estimate, "m-big" ~64 MB: the 60 MB class fits only m-small.
SHAPES = {"m-small": {"n_embd": 64}, "m-big": {"n_embd": 512, "n_layers": 8, "n_ff": 1024}}
DEVICES = {"agent-small": "e2e-small", "agent-big": "e2e-big"}
JUDGE, REFERENCE = "gemma-judge", "m-big"
"""The fleet's judge (the real Gemma-3-270M, excluded from serving) and its reference: the
biggest candidate (Gemma answering as the reference would cost ~15 s per bench here)."""


@pytest.fixture(autouse=True)
def fleet_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Controller settings for profiling, set before the ``fleet`` fixture starts it."""
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_JUDGE_MODEL_ID", JUDGE)
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_REFERENCE_MODEL_ID", REFERENCE)
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_PROFILING_QUESTIONS", "1")


def test_default_deployment_enrolls_profiles_plans_and_serves(
    fleet: Fleet, tiny_gguf_factory: Callable[..., Path], gemma3_path: Path
) -> None:
    wait_for(fleet.healthy, 30, "the controller's /healthz", fleet.logs)
    for model_id, shape in SHAPES.items():
        fleet.upload_model(model_id, tiny_gguf_factory(model_id, **shape))
    fleet.upload_model(JUDGE, gemma3_path)
    pin = {"kind": "exclude", "model_id": JUDGE, "reason": "the fleet's judge, not served"}
    assert fleet.api.post("/pins", json=pin).status_code == 201
    for device_id, device_class in DEVICES.items():
        enrolled = fleet.api.post("/devices", json={"id": device_id, "device_class": device_class})
        assert enrolled.status_code == 201, enrolled.text
        fleet.start_agent(device_id, device_class, enrolled.json()["credentials"]["password"])

    def online() -> bool:
        items = fleet.api.get("/devices").json()["items"]
        return {d["id"] for d in items if d["status"] == "online"} == set(DEVICES)

    wait_for(online, 60, "both devices online", fleet.logs)

    # No device holds any model: each bench makes it fetch what it names from the registry.
    # Only the big class is profiled: a measured peak RSS counts the whole Python process
    # (~90 MB), more than the small class's 60 MB, which only the GGUF estimate fits.
    profiled = fleet.api.post("/profiling", json={"device_class": "e2e-big"})
    assert profiled.status_code == 202, profiled.text
    (sent,) = profiled.json()["sent"]  # the cheapest never-measured pair first
    assert (sent["device_id"], sent["model_id"]) == ("agent-big", "m-small")
    assert (sent["judge_model_id"], sent["reference_model_id"]) == (JUDGE, REFERENCE)
    assert "never judged: reference parity" in sent["reason"]
    bench_id = fleet.send(
        "agent-big",
        {
            "type": "bench",
            "model_ids": ["m-big"],
            "judge_model_id": JUDGE,
            "reference_model_id": REFERENCE,
            "refine": False,
            "max_questions": 1,
        },
    )  # queued on agent-big behind the profiling bench
    for command_id in (sent["command_id"], bench_id):
        wait_for(
            lambda c=command_id: {"ok", "error"} & set(fleet.ack_statuses(c)),
            150,
            f"bench {command_id} to finish",
            fleet.logs,
        )
        assert "ok" in fleet.ack_statuses(command_id), fleet.api.get(f"/commands/{command_id}").text

    # Judged against the reference on the device: every quality number comes from there.
    judged = fleet.api.get("/bench/results", params={"device_id": "agent-big"}).json()["items"]
    assert {r["model_id"] for r in judged} == set(SHAPES)
    assert all(r["pct_of_reference"] is not None and r["pct_of_reference"] > 0 for r in judged)
    scores = fleet.api.get("/scores").json()["classes"]
    big = {r["model_id"]: r for r in scores["e2e-big"] if not r["refine"]}
    assert set(big) == set(SHAPES) and all(r["n_questions"] >= 1 for r in big.values())
    assert all(r["B"] > 0 and not r["quality_pooled"] for r in big.values())
    zero_shot = {r["model_id"]: r["pct_of_reference"] for r in judged if not r["refined"]}
    assert {m: r["B"] for m, r in big.items()} == pytest.approx(
        {m: pct / 100 for m, pct in zero_shot.items()}
    )  # one question: B is the device's judge-score ratio
    small = next(r for r in scores["e2e-small"] if r["model_id"] == "m-small")
    assert small["quality_pooled"] and small["B"] == big["m-small"]["B"]  # quality is the file's

    applied = fleet.api.post("/plans", json={})
    assert applied.status_code in (202, 409), applied.text
    plan = applied.json()["plan"] if applied.status_code == 202 else None
    assert plan is not None, applied.text
    chosen = {a["device_id"]: a["model_id"] for a in applied.json()["assignments"]}
    assert chosen["agent-small"] == "m-small"  # m-big needs more than the class's 60 MB
    assert chosen["agent-big"] in SHAPES  # the judge is excluded from serving

    def plan_done() -> bool:
        detail = fleet.api.get(f"/plans/{plan['id']}").json()
        statuses = {a["device_id"]: a["status"] for a in detail["assignments"]}
        rollout = detail["plan"]["params"]["rollout"]["state"]
        return rollout == "done" and statuses == dict.fromkeys(DEVICES, "ok")

    wait_for(plan_done, 60, "the plan's rollout (advanced by the planner loop)", fleet.logs)
    for device_id, model_id in chosen.items():
        answer = httpx.post(
            f"http://127.0.0.1:{fleet.chat_ports[device_id]}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == model_id
