"""Done-when: >= 1,000 metrics through a broker outage and an agent restart, 0 lost.

The agent runs as a real process (`edgefleet agent run`), publishing metrics
every 5 ms. The broker is stopped, the agent is SIGKILLed and started again
while the broker is down, then the broker comes back. The agent's own log
says which metrics seqs it queued (logged after the outbox commit); the
subscriber (a persistent session on a broker with persistence, so it misses
nothing while it reconnects itself) must have received every one of them.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from agent.engine.smoke import DEFAULT_TIMEOUT_S as ENGINE_CHECK_S
from shared.messages import parse_message
from shared.topics import Topics
from tests.agent.daemon_support import (
    Recorder,
    agent_config,
    agent_process,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(600)  # the waits below add up to 420 s at most
QUEUED = re.compile(rb"queued metrics seq=(\d+)")


def _queued(log: Path) -> set[int]:
    return {int(m) for m in QUEUED.findall(log.read_bytes())}


def _queued_by_any(logs: list[Path]) -> set[int]:
    return set().union(*(_queued(log) for log in logs))


def _seqs(recorder: Recorder) -> set[int]:
    return {m["seq"] for m in recorder.of_kind("metrics")}


def _persistent_broker(mosquitto_factory, persist: Path):
    """A broker that keeps the recorder's persistent session across its restart."""
    persist.mkdir()
    return mosquitto_factory(
        [
            "persistence true",
            f"persistence_location {persist}/",
            "autosave_interval 1",
        ]
    )


def test_metrics_survive_broker_outage_and_agent_restart(mosquitto_factory, tmp_path: Path):
    broker = _persistent_broker(mosquitto_factory, tmp_path / "persist")
    config = write_config(
        tmp_path,
        agent_config(
            tmp_path,
            broker.port,
            device_id="dev-out",
            metrics_interval_s=0.005,
            heartbeat_interval_s=0.2,
        ),
    )
    topic = Topics().device("dev-out", "metrics")
    recorder = Recorder(broker.port, topic, client_id="outage-rec", persistent=True)
    logs = [tmp_path / "agent-a.log", tmp_path / "agent-b.log"]
    first = agent_process(config, logs[0], "-v")
    second = None
    try:
        assert wait_until(lambda: len(recorder.of_kind("metrics")) >= 300, 60), logs[0].read_text()
        broker.stop()
        time.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = agent_process(config, logs[1], "-v")
        # the restarted agent checks its engine first, then queues while the broker is down
        start_s = ENGINE_CHECK_S + 30
        assert wait_until(lambda: len(_queued(logs[1])) >= 100, start_s), logs[1].read_text()
        during_outage = _queued_by_any(logs)
        received_before = _seqs(recorder)
        broker.start()
        assert wait_until(lambda: len(_queued_by_any(logs)) >= 1100, 60)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        queued = _queued_by_any(logs)
        assert wait_until(lambda: queued <= _seqs(recorder), 60), (
            f"missing {len(queued - _seqs(recorder))}"
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        recorder.close()
    received = [m["seq"] for m in recorder.of_kind("metrics")]
    assert len(queued) >= 1000
    assert min(_queued(logs[1])) > max(_queued(logs[0]))  # seq kept rising across the restart
    assert queued <= set(received)  # every queued seq arrived at least once: 0 lost
    queued_in_outage = during_outage - received_before
    assert len(queued_in_outage) >= 100  # the outage really held messages back
    for message in recorder.of_kind("metrics")[:: max(1, len(received) // 50)]:
        assert parse_message(topic, json.dumps(message).encode()).device_id == "dev-out"
    with sqlite3.connect(tmp_path / "data" / "agent.db") as db:
        unpublished, waiting = db.execute(
            "SELECT COUNT(*) FILTER (WHERE published_at IS NULL), "
            "COUNT(*) FILTER (WHERE published_at IS NOT NULL) FROM outbox"
        ).fetchone()
    assert unpublished == 0  # every row reached the broker
    # no controller confirms here: the acknowledged rows wait, within their bound
    assert 0 < waiting <= 5_000
