"""`edgefleet plan ...` as a real process against a real database (and a real broker for apply)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session

from controller import models as db
from controller.core.db import create_db_engine, migrate
from controller.ingest.service import IngestService
from shared.messages import AckBody, AckStatus
from shared.topics import TopicKind, Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.controller.plans.db_world import seed_world
from tests.support.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[3]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_CONTROLLER_")}
    return env | {"PYTHONPATH": str(ROOT), "EDGEFLEET_CONTROLLER_DATA_DIR": str(data_dir), **extra}


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "plan", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _engine(tmp_path: Path, tiny_gguf_factory):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'controller.db'}")
    migrate(engine)
    seed_world(engine, tiny_gguf_factory)
    return engine


def test_plan_show_history_and_scores(tmp_path: Path, tiny_gguf_factory) -> None:
    _engine(tmp_path, tiny_gguf_factory).dispose()
    env = _env(tmp_path)
    shown = _cli(env, "show", "--reasons")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("dry run, not stored: 3 to change")
    assert "m-big: needs 0.09 GB (estimated 84 MB + 10% margin)" in shown.stdout
    dry = json.loads(_cli(env, "show", "--json").stdout)
    assert (dry["plan"]["id"], dry["plan"]["status"]) == (None, "dry-run")
    assert _cli(env, "history").stdout == ""  # a dry run stores nothing
    drafted = _cli(env, "draft")
    assert drafted.returncode == 0, drafted.stderr
    assert drafted.stdout.startswith("plan 1 (draft): 3 to change")
    assert "m-big: needs" not in drafted.stdout  # reasons only with --reasons
    as_json = json.loads(_cli(env, "draft", "--json").stdout)
    assert (as_json["plan"]["id"], as_json["plan"]["status"]) == (2, "draft")
    assert [a["status"] for a in as_json["assignments"]] == [
        a["status"] for a in dry["assignments"]
    ]
    hist = _cli(env, "history")
    assert hist.returncode == 0 and hist.stdout.splitlines()[0].split()[:2] == ["2", "draft"]
    assert hist.stdout.splitlines()[1].split()[:2] == ["1", "superseded"]
    board = _cli(env, "scores", "--class", "big-box")
    assert board.stdout.startswith("big-box:") and "small-box" not in board.stdout
    assert "m-small" in board.stdout and "predicted" in board.stdout


def test_plan_apply_through_the_broker_until_done(
    tmp_path: Path,
    tiny_gguf_factory,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
) -> None:
    engine = _engine(tmp_path, tiny_gguf_factory)
    ingest_factory(engine, mosquitto, client_id="plan-cli-ingest")
    env = _env(
        tmp_path,
        EDGEFLEET_CONTROLLER_BROKER_URL=f"mqtt://127.0.0.1:{mosquitto.port}",
        EDGEFLEET_CONTROLLER_DEV_MODE="true",  # the test broker has no logins
        EDGEFLEET_CONTROLLER_PUBLIC_URL="http://ctl.test:8000",
    )
    assert _cli(env, "draft").returncode == 0
    devices = {d: FakeDevice(d, mosquitto.port) for d in ("s1", "s2", "b1")}
    acked: set[str] = set()

    def on_message(device: FakeDevice):
        def handle(client, userdata, message) -> None:
            cid = json.loads(message.payload)["body"]["command"]["command_id"]
            threading.Thread(
                target=lambda: device.publish_body(AckBody(command_id=cid, status=AckStatus.OK))
            ).start()
            acked.add(device.device_id)

        return handle

    for d in devices.values():
        d.client.on_message = on_message(d)
        d.client.subscribe(Topics().device(d.device_id, TopicKind.CMD), qos=1)
    wait_until(lambda: False, 0.3)
    try:
        done = _cli(env, "apply", "1", "--no-require-metrics", "--timeout-s", "60")
    finally:
        for d in devices.values():
            d.close()
        engine.dispose()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 changes in 2 waves" in done.stdout and "plan 1: done" in done.stdout
    assert acked == {"s1", "s2", "b1"}


def test_plan_profile_sends_judged_benches_through_the_broker(
    tmp_path: Path, tiny_gguf_factory, mosquitto: MosquittoBroker
) -> None:
    engine = _engine(tmp_path, tiny_gguf_factory)
    path = tiny_gguf_factory("m-new")
    with Session(engine) as session:  # never judged: worth profiling on both classes
        session.add(
            db.Model(id="m-new", name="m-new", sha256="d" * 64, size_bytes=path.stat().st_size,
                     path=str(path), filename=path.name)
        )  # fmt: skip
        session.commit()
    env = _env(tmp_path, EDGEFLEET_CONTROLLER_PUBLIC_URL="http://ctl.test:8000")
    no_broker = _cli(env, "profile")
    assert no_broker.returncode == 2 and "plan profile needs broker_url" in no_broker.stderr
    env |= {
        "EDGEFLEET_CONTROLLER_BROKER_URL": f"mqtt://127.0.0.1:{mosquitto.port}",
        "EDGEFLEET_CONTROLLER_DEV_MODE": "true",  # the test broker has no logins
        "EDGEFLEET_CONTROLLER_JUDGE_MODEL_ID": "m-big",
        "EDGEFLEET_CONTROLLER_REFERENCE_MODEL_ID": "m-big",
    }
    b1 = FakeDevice("b1", mosquitto.port)
    received: list[dict] = []
    b1.client.on_message = lambda c, u, m: received.append(json.loads(m.payload)["body"])
    b1.client.subscribe(Topics().device("b1", TopicKind.CMD), qos=1)
    wait_until(lambda: False, 0.3)
    try:
        sent = _cli(env, "profile", "--json")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        rows = {r["device_id"]: r for r in json.loads(sent.stdout)}
        assert sorted(rows) == ["b1", "s1"] and rows["b1"]["status"] == "sent"
        assert wait_until(lambda: bool(received), 5)
    finally:
        b1.close()
        engine.dispose()
    command = received[0]["command"]
    assert (command["judge_model_id"], command["reference_model_id"]) == ("m-big", "m-big")
    assert command["sources"][0]["url"] == "http://ctl.test:8000/api/v1/models/m-new/file"
    again = _cli(env, "profile")  # both pairs are still being profiled
    assert again.returncode == 0 and again.stdout.startswith("nothing to profile")
