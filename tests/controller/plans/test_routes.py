"""The planner's HTTP routes mounted in the real app: its auth, its command sender, a broker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from controller.core.security import Role
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from shared.topics import Topics
from tests.controller.api.conftest import start_api
from tests.controller.devices import wait_until
from tests.controller.plans.db_world import plan_row_counts, seed_world
from tests.controller.plans.test_apply import Listener
from tests.support.broker import MosquittoBroker

PUBLIC_URL = "http://ctl.test:8123/"


@pytest.fixture
def api(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
    tiny_gguf_factory,
):
    engine = sqlite_engine
    seed_world(engine, tiny_gguf_factory)
    service = ingest_factory(engine, mosquitto, client_id="routes-ctl")
    sender = CommandPublisher(engine, service.connection, topics=Topics())
    overrides = getattr(request, "param", {})  # extra controller settings
    running = start_api(
        tmp_path / "data", engine=engine, sender=sender, public_url=PUBLIC_URL, **overrides
    )
    listeners = {d: Listener(d, mosquitto.port) for d in ("s1", "s2", "b1")}
    wait_until(lambda: False, 0.3)
    tokens = {Role.VIEWER: running.tokens["viewer"], Role.OPERATOR: running.tokens["operator"]}
    with httpx.Client(base_url=running.url + "/api/v1", timeout=30) as client:
        yield client, tokens, listeners
    for listener in listeners.values():
        listener.device.close()
    running.server.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_scores_need_a_token_and_show_the_leaderboard(api) -> None:
    client, tokens, _ = api
    assert client.get("/scores").json()["error"] == "unauthorized"
    body = client.get(
        "/scores", params={"device_class": "big-box"}, headers=_auth(tokens[Role.VIEWER])
    ).json()
    assert list(body["classes"]) == ["big-box"]
    assert body["classes"]["big-box"][0]["model_id"] == "m-big"
    assert body["weights"]["gamma"] == 0.1
    assert {r["model_id"] for r in body["hardware_independent"]} == {"m-big", "m-small"}


def test_apply_needs_the_operator_role_and_starts_the_canary_wave(api) -> None:
    client, tokens, listeners = api
    denied = client.post("/plans", json={}, headers=_auth(tokens[Role.VIEWER]))
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
    accepted = client.post("/plans", json={}, headers=_auth(tokens[Role.OPERATOR]))
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["message"] == "3 changes in 2 waves"
    assert wait_until(lambda: listeners["b1"].commands and listeners["s1"].commands, 5)
    assert not listeners["s2"].commands
    sent = listeners["b1"].commands[0]
    assert sent["url"] == "http://ctl.test:8123/api/v1/models/m-big/file"  # the registry route
    plan_id = body["plan"]["id"]
    detail = client.get(f"/plans/{plan_id}", headers=_auth(tokens[Role.VIEWER])).json()
    assert {a["device_id"]: a["status"] for a in detail["assignments"]} == {
        "b1": "sent",
        "s1": "sent",
        "s2": "change",
    }
    again = client.post("/plans", json={"plan_id": plan_id}, headers=_auth(tokens[Role.OPERATOR]))
    assert again.status_code == 409 and "not a draft" in again.json()["detail"]
    advanced = client.post(f"/plans/{plan_id}/advance", headers=_auth(tokens[Role.OPERATOR]))
    assert advanced.json() == {"state": "running"}
    missing = client.get("/plans/9999", headers=_auth(tokens[Role.VIEWER]))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_pins_change_the_draft_and_can_be_removed(api) -> None:
    client, tokens, _ = api
    viewer, operator = _auth(tokens[Role.VIEWER]), _auth(tokens[Role.OPERATOR])
    pin = {"kind": "pin", "device_id": "b1", "model_id": "m-small", "refine": False}
    assert client.post("/pins", json=pin, headers=viewer).status_code == 403
    assert (
        client.post(
            "/pins", json={"kind": "pin", "model_id": "m-small"}, headers=operator
        ).status_code
        == 422
    )
    created = client.post("/pins", json=pin, headers=operator)
    assert created.status_code == 201 and created.json()["created_by"] == "operator-1"
    draft = client.get("/plans/draft", headers=viewer).json()
    b1 = next(a for a in draft["assignments"] if a["device_id"] == "b1")
    assert (b1["model_id"], b1["refine"], b1["reasons"][0]) == ("m-small", False, "pinned")
    assert client.delete(f"/pins/{created.json()['id']}", headers=operator).status_code == 204
    assert client.get("/pins", headers=viewer).json() == []
    assert draft["plan"]["status"] == "dry-run"
    assert client.get("/plans", headers=viewer).json() == []  # a viewer's dry run stores nothing


def test_a_viewers_dry_run_leaves_the_plans_table_unchanged(api, sqlite_engine: Engine) -> None:
    client, tokens, listeners = api
    viewer, operator = _auth(tokens[Role.VIEWER]), _auth(tokens[Role.OPERATOR])
    stored = client.post("/plans/draft", json={}, headers=operator).json()["plan"]["id"]
    before = plan_row_counts(sqlite_engine)
    dry = client.get("/plans/draft", headers=viewer)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["plan"]["id"], body["plan"]["status"]) == (None, "dry-run")
    assert body["plan"]["created_by"] == "viewer-1"
    assert body["plan"]["summary"].startswith("3 to change")
    s1 = next(a for a in body["assignments"] if a["device_id"] == "s1")
    assert (s1["plan_id"], s1["status"], s1["model_id"]) == (None, "change", "m-small")
    assert any(r.startswith("m-big: needs ") for r in s1["reasons"])
    assert plan_row_counts(sqlite_engine) == before == (1, 3)
    kept = client.get(f"/plans/{stored}", headers=viewer).json()
    assert kept["plan"]["status"] == "draft"  # a dry run supersedes nothing
    assert not any(listener.commands for listener in listeners.values())


def test_storing_a_draft_needs_the_operator_and_post_plans_applies_it(
    api, sqlite_engine: Engine
) -> None:
    client, tokens, listeners = api
    viewer, operator = _auth(tokens[Role.VIEWER]), _auth(tokens[Role.OPERATOR])
    denied = client.post("/plans/draft", json={}, headers=viewer)
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
    assert plan_row_counts(sqlite_engine) == (0, 0)
    with_id = client.post("/plans/draft", json={"plan_id": 1}, headers=operator)
    assert with_id.status_code == 422  # a draft is new: it has no id to name
    constrained = client.post(
        "/plans/draft", json={"min_devices_per_model": {"m-small": 3}}, headers=operator
    )
    assert constrained.status_code == 201, constrained.text
    assert {a["model_id"] for a in constrained.json()["assignments"]} == {"m-small"}
    assert constrained.json()["plan"]["params"]["constraints"]["min_devices_per_model"] == {
        "m-small": 3
    }
    created = client.post("/plans/draft", json={}, headers=operator)
    assert created.status_code == 201, created.text
    body = created.json()
    plan_id = body["plan"]["id"]
    assert isinstance(plan_id, int) and plan_id > constrained.json()["plan"]["id"]
    assert (body["plan"]["status"], body["plan"]["created_by"]) == ("draft", "operator-1")
    assert client.get(f"/plans/{plan_id}", headers=viewer).json() == body
    history = client.get("/plans", headers=viewer).json()
    assert [(p["id"], p["status"]) for p in history] == [
        (plan_id, "draft"),
        (constrained.json()["plan"]["id"], "superseded"),
    ]
    applied = client.post("/plans", json={"plan_id": plan_id}, headers=operator)
    assert applied.status_code == 202, applied.text
    assert applied.json()["message"] == "3 changes in 2 waves"
    assert applied.json()["plan"]["id"] == plan_id
    assert wait_until(lambda: listeners["b1"].commands and listeners["s1"].commands, 5)


GRADED = {"judge_model_id": "m-big", "reference_model_id": "m-big", "profiling_questions": 2}


@pytest.mark.parametrize("api", [GRADED], indirect=True)
def test_profiling_needs_the_operator_role_and_sends_judged_benches_with_sources(
    api, tiny_gguf: Path
) -> None:
    client, tokens, listeners = api
    viewer, operator = _auth(tokens[Role.VIEWER]), _auth(tokens[Role.OPERATOR])
    assert client.post("/profiling", json={}, headers=viewer).status_code == 403
    idle = client.post("/profiling", json={}, headers=operator)
    assert idle.status_code == 202 and idle.json()["sent"] == []  # m-small cannot beat m-big
    assert idle.json()["message"].startswith("nothing to profile")
    upload = client.post(
        "/models/upload", params={"model_id": "m-new"}, content=tiny_gguf.read_bytes(),
        headers=operator,
    )  # fmt: skip
    assert upload.status_code == 201, upload.text
    small = client.post("/profiling", json={"device_class": "small-box"}, headers=operator)
    assert [s["device_id"] for s in small.json()["sent"]] == ["s1"]
    sent = client.post("/profiling", json={"limit": 5}, headers=operator).json()
    assert sent["message"] == "1 bench command(s) sent"  # small-box's pair is in flight
    by_device = {s["device_id"]: s for s in small.json()["sent"] + sent["sent"]}
    assert sorted(by_device) == ["b1", "s1"]
    assert by_device["b1"]["judge_model_id"] == "m-big" and by_device["b1"]["status"] == "sent"
    assert "m-new on big-box: optimistic Psi" in by_device["b1"]["reason"]
    assert "speed only: the judge m-big needs" in by_device["s1"]["reason"]
    assert wait_until(lambda: listeners["b1"].commands, 5)
    command = listeners["b1"].commands[0]
    assert (command["type"], command["max_questions"]) == ("bench", 2)
    assert [s["url"] for s in command["sources"]] == [
        f"{PUBLIC_URL.rstrip('/')}/api/v1/models/{m}/file" for m in ("m-new", "m-big")
    ]
    again = client.post("/profiling", json={}, headers=operator).json()
    assert again["sent"] == []  # those benches still run; s2 would only measure m-new again
    assert client.post("/profiling", json={"limit": 0}, headers=operator).status_code == 422


@pytest.mark.parametrize(
    "api", [{"judge_model_id": "ghost", "reference_model_id": "m-big"}], indirect=True
)
def test_profiling_with_a_judge_missing_from_the_registry_is_a_conflict(api) -> None:
    client, tokens, listeners = api
    refused = client.post("/profiling", json={}, headers=_auth(tokens[Role.OPERATOR]))
    assert refused.status_code == 409
    assert refused.json()["detail"] == "judge_model_id 'ghost' is not in the model registry"
    assert all(not listener.commands for listener in listeners.values())
