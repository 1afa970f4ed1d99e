"""The agent against a real Mosquitto: announcements, heartbeats, will, clean stop."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from shared.messages import DeviceStatus, parse_message
from shared.topics import Topics
from tests.agent.daemon_support import (
    Recorder,
    agent_config,
    agent_process,
    make_agent,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


TOPICS = Topics()


def _validated(recorder: Recorder, kind: str) -> list:
    with recorder.lock:
        raw = [(t, m) for t, m, _ in recorder.messages if t.endswith("/" + kind)]
    return [parse_message(t, json.dumps(m).encode()) for t, m in raw]


def test_agent_publishes_valid_hello_state_heartbeat_and_stops_cleanly(
    broker, tmp_path: Path
) -> None:
    recorder = Recorder(broker.port, TOPICS.device_namespace("dev-1"))
    agent = make_agent(tmp_path, broker.port)
    try:
        agent.start()
        assert wait_until(lambda: len(recorder.of_kind("heartbeat")) >= 2)
        assert wait_until(lambda: recorder.of_kind("metrics"))
        hello = _validated(recorder, "hello")[-1]
        assert hello.body.device_class == "dev-x86-1core"
        assert hello.body.hardware.cores >= 1 and hello.body.hardware.ram_total_mb > 0
        state = _validated(recorder, "state")[-1]
        assert state.body.status == DeviceStatus.ONLINE
        beat = _validated(recorder, "heartbeat")[-1]
        assert beat.body.uptime_s > 0 and beat.body.outbox_depth >= 0
    finally:
        agent.stop()
    assert wait_until(lambda: _validated(recorder, "state")[-1].body.status == "stopped")
    seqs = [m["seq"] for _, m, _ in recorder.messages]
    assert len(set(seqs)) == len(seqs)
    recorder.close()


def test_killed_agent_leaves_its_offline_will(broker, tmp_path: Path) -> None:
    config = write_config(tmp_path, agent_config(tmp_path, broker.port, device_id="dev-kill"))
    recorder = Recorder(broker.port, TOPICS.device("dev-kill", "state"), client_id="rk")
    process = agent_process(config, tmp_path / "agent.log")
    try:
        assert wait_until(
            lambda: any(m["body"]["status"] == "online" for m in recorder.of_kind("state")), 30
        ), (tmp_path / "agent.log").read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert wait_until(lambda: recorder.of_kind("state")[-1]["body"]["status"] == "offline", 30)
        will = recorder.of_kind("state")[-1]
        parsed = parse_message(TOPICS.device("dev-kill", "state"), json.dumps(will).encode())
        assert parsed.device_id == "dev-kill"
    finally:
        if process.poll() is None:
            process.kill()
        recorder.close()
    # a late subscriber sees the retained will
    late = Recorder(broker.port, TOPICS.device("dev-kill", "state"), client_id="late")
    assert wait_until(lambda: late.of_kind("state"))
    assert late.of_kind("state")[-1]["body"]["status"] == "offline"
    assert late.messages[-1][2] is True
    late.close()


def test_a_model_that_cannot_be_served_at_start_shows_error(broker, tmp_path: Path) -> None:
    recorder = Recorder(broker.port, TOPICS.device("dev-err", "state"), client_id="rec-err")
    agent = make_agent(
        tmp_path,
        broker.port,
        device_id="dev-err",
        initial_model=str(tmp_path / "gone.gguf"),
        profile_overrides={"gpio": {"status_led": 17}},
    )
    try:
        agent.start()
        assert wait_until(lambda: recorder.of_kind("state"))
        state = recorder.of_kind("state")[-1]["body"]
        assert state["activity"] == "error" and "gone.gguf" in state["detail"]
        assert agent.light is not None and agent.light.activity == "error"
    finally:
        agent.stop()
        recorder.close()
