"""End to end: the planner assigns two real agents of different classes, then moves the
big one to a test-time strategy that measured better (it serves its chat with it), then a
lying measurement makes a canary fail for real and the wave is rolled back.

Real parts: Mosquitto, the controller's ingest into SQLite, model files served
by the registry's ``file_response`` on uvicorn, two ``edgefleet agent run``
processes loading tiny generated GGUFs with llama.cpp (one thread each).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session, select

from controller import crud
from controller import models as db
from controller.core.db import session_scope
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from controller.plans.apply import PlanApplier, RolloutConfig
from controller.plans.service import draft_plan, plan_detail
from controller.registry.serve import file_response
from shared.strategies import DIRECT
from shared.topics import Topics
from tests.agent.daemon_support import agent_config, agent_process, write_config
from tests.controller import conftest as controller_fixtures
from tests.controller.api.server import UvicornServer
from tests.controller.devices import wait_until
from tests.controller.plans.db_world import add_run
from tests.factories.profiles import write_profiles
from tests.support.broker import MosquittoBroker
from tests.support.ports import free_port

# The controller's fixtures (a migrated SQLite database, ingest services), reused here.
sqlite_engine = controller_fixtures.sqlite_engine
ingest_factory = controller_fixtures.ingest_factory

# Tiny models: "m-small" needs ~53 MB by the GGUF estimate, "m-big" ~64 MB even at the
# smallest context. The small class's 60 MB budget fits only m-small.
SHAPES = {"m-small": {"n_embd": 64}, "m-big": {"n_embd": 512, "n_layers": 8, "n_ff": 1024}}


def _registry(engine: Engine, files: dict[str, Path]) -> UvicornServer:
    app = FastAPI()

    @app.get("/models/{model_id}/file")
    def model_file(model_id: str, request: Request) -> Response:
        with Session(engine) as session:
            row = session.get(db.Model, model_id)
        assert row is not None
        return file_response(request, Path(row.path), sha256=row.sha256, filename=row.filename)

    return UvicornServer(app).start()


def _seed(engine: Engine, profiles_dir: Path, files: dict[str, Path]) -> None:
    with session_scope(engine) as session:
        for profile in write_profiles(profiles_dir):
            crud.upsert_device_class(session, profile=profile)
        for model_id, path in files.items():
            session.add(
                db.Model(
                    id=model_id,
                    name=model_id,
                    size_bytes=path.stat().st_size,
                    path=str(path),
                    sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    filename=path.name,
                )
            )
        session.flush()
        # Quality judged on the controller's side: m-big is the better model.
        add_run(session, "m-small", "judge", "judge-server", 1)
        add_run(session, "m-big", "judge", "judge-server", 2)


VOTE = "vote:3"


def _measure_votes(engine: Engine) -> None:
    """m-big's judged run also answered every item voting: two judge points better each."""
    with session_scope(engine) as session:
        run = session.exec(select(db.BenchmarkRun).where(db.BenchmarkRun.run_id == "r2")).one()
        direct = session.exec(
            select(db.BenchmarkQuestion).where(db.BenchmarkQuestion.run_pk == run.id)
        ).all()
        for q in direct:
            if q.strategy not in (None, DIRECT.name):
                continue
            fields = q.model_dump(exclude={"id", "refined", "strategy", "judge_score"})
            better = min(10.0, (q.judge_score or 1.0) + 2)
            session.add(
                db.BenchmarkQuestion(**fields, refined=True, strategy=VOTE, judge_score=better)
            )


def _device(engine: Engine, device_id: str) -> db.Device | None:
    with Session(engine) as session:
        return session.get(db.Device, device_id)


def _run_until_settled(applier: PlanApplier, plan_id: int, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    state = "running"
    while state == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        state = applier.tick(plan_id)
    return state


@pytest.mark.slow
def test_planner_assigns_two_agents_then_rolls_back_a_failing_canary(
    tmp_path: Path,
    sqlite_engine: Engine,
    mosquitto_factory: Callable[..., MosquittoBroker],
    ingest_factory: Callable[..., IngestService],
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    # A private broker: the agents' retained hello/state must not reach later tests' ingest.
    mosquitto = mosquitto_factory()
    engine = sqlite_engine
    profiles_dir = tmp_path / "classes"
    profiles_dir.mkdir()
    files = {m: tiny_gguf_factory(m, **shape) for m, shape in SHAPES.items()}
    _seed(engine, profiles_dir, files)
    service = ingest_factory(engine, mosquitto, client_id="e2e-ctl")
    registry = _registry(engine, files)
    agents, logs = [], []
    chat_port = free_port()  # the big agent's chat shows the strategy it serves with
    for device_id, device_class in (("agent-small", "e2e-small"), ("agent-big", "e2e-big")):
        home = tmp_path / device_id
        home.mkdir()
        chat = {"chat_enabled": True, "chat_port": chat_port} if device_id == "agent-big" else {}
        config = agent_config(
            home,
            mosquitto.port,
            device_id=device_id,
            device_class=device_class,
            profiles_dir=str(profiles_dir),
            dev_mode=True,
            **chat,
        )
        logs.append(home / "agent.log")
        agents.append(agent_process(write_config(home, config), logs[-1]))
    try:
        _scenario(engine, service, registry, logs, chat_port)
    finally:
        for proc in agents:
            proc.terminate()
        for proc in agents:
            proc.wait(timeout=30)
        registry.stop()


def _scenario(
    engine: Engine,
    service: IngestService,
    registry: UvicornServer,
    logs: list[Path],
    chat_port: int,
) -> None:
    def announced() -> bool:
        return all(
            (d := _device(engine, i)) is not None
            and d.device_class is not None
            and d.last_heartbeat_at is not None
            for i in ("agent-small", "agent-big")
        )

    assert wait_until(announced, 60), [p.read_text()[-2000:] for p in logs]
    applier = PlanApplier(
        engine,
        CommandPublisher(engine, service.connection, topics=Topics()),
        model_url=lambda m: f"{registry.url}/models/{m}/file",
        config=RolloutConfig(timeout_s=60, require_metrics=True),
    )
    # 1. Each agent gets the best model that fits its class; both canaries ack and report.
    first = draft_plan(engine)
    with Session(engine) as session:
        rows = {a["device_id"]: a for a in plan_detail(session, first)["assignments"]}
    assert rows["agent-small"]["model_id"] == "m-small"
    assert rows["agent-big"]["model_id"] == "m-big"
    assert applier.apply(first) == "2 changes in 1 waves"
    assert _run_until_settled(applier, first) == "done", [p.read_text()[-3000:] for p in logs]
    assert wait_until(lambda: _device(engine, "agent-small").model_id == "m-small", 20)
    assert wait_until(lambda: _device(engine, "agent-big").model_id == "m-big", 20)
    _serve_with_a_strategy(engine, applier, logs, chat_port)

    # 2. A lying measurement says m-big fits the small class; the agent knows better.
    with session_scope(engine) as session:
        add_run(session, "m-big", "agent-small", "e2e-small", 3)
        run = session.exec(select(db.BenchmarkRun).where(db.BenchmarkRun.run_id == "r3")).one()
        run.peak_rss_mb = 40.0
        session.add(run)
    second = draft_plan(engine)
    with Session(engine) as session:
        rows = {a["device_id"]: a for a in plan_detail(session, second)["assignments"]}
    assert (rows["agent-small"]["model_id"], rows["agent-small"]["status"]) == ("m-big", "change")
    assert applier.apply(second) == "1 changes in 1 waves"
    assert _run_until_settled(applier, second) == "rolled_back"
    with Session(engine) as session:
        plan = session.get(db.Plan, second)
        assert plan is not None and plan.status == "failed"
        assert "agent-small: command error" in plan.reasons[-1]
        assert "memory budget is 60 MB" in plan.reasons[-1]
    # The agent kept serving m-small, and the rollback command was acknowledged.
    assert wait_until(lambda: _device(engine, "agent-small").model_id == "m-small", 20)
    with Session(engine) as session:
        rollback = session.get(db.Command, f"p{second}-rb-agent-small")
        assert rollback is not None
    assert wait_until(lambda: _command_status(engine, f"p{second}-rb-agent-small") == "ok", 20)


def _serve_with_a_strategy(
    engine: Engine, applier: PlanApplier, logs: list[Path], chat_port: int
) -> None:
    """Voting measured better for m-big: the plan moves agent-big to it, and it serves so."""
    _measure_votes(engine)
    plan_id = draft_plan(engine)
    with Session(engine) as session:
        rows = {a["device_id"]: a for a in plan_detail(session, plan_id)["assignments"]}
    big = rows["agent-big"]
    assert (big["model_id"], big["strategy"], big["status"]) == ("m-big", VOTE, "change")
    [why] = [r for r in big["reasons"] if r.startswith("strategy runner-up on m-big: ")]
    assert f"lost to {VOTE}, Psi" in why, big["reasons"]
    assert rows["agent-small"]["status"] == "unchanged"
    assert applier.apply(plan_id) == "1 changes in 1 waves"
    assert _run_until_settled(applier, plan_id) == "done", [p.read_text()[-3000:] for p in logs]
    with Session(engine) as session:
        command = session.get(db.Command, f"p{plan_id}-as-agent-big")
        assert command is not None and command.body["strategy"] == VOTE
    assert wait_until(lambda: _device(engine, "agent-big").strategy == VOTE, 20)
    answer = httpx.post(
        f"http://127.0.0.1:{chat_port}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    served = answer.json()["edgefleet"]
    assert served["strategy"] == VOTE and served["stages"] == 3, served


def _command_status(engine: Engine, command_id: str) -> str | None:
    with Session(engine) as session:
        row = session.get(db.Command, command_id)
        return row.status if row else None
