"""An agent killed mid-benchmark: after its restart the controller learns the bench failed.

Before, the interrupted bench stayed ``accepted`` on the controller forever:
the restarted agent marked it failed only in its own database.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    classes = tmp_path / "classes"
    write_profiles(classes)
    with Fleet(tmp_path, classes) as running:
        yield running


def test_a_bench_cut_off_by_sigkill_gets_an_error_ack_after_the_restart(
    fleet: Fleet, tiny_gguf: Path
) -> None:
    fleet.wait(fleet.healthy, 30, "the controller's /healthz")
    fleet.upload_model("m-tiny", tiny_gguf)
    fleet.enroll({"agent-1": "e2e-big"})
    fleet.assign("agent-1", "m-tiny")
    bench_id = fleet.send("agent-1", {"type": "bench", "model_ids": ["m-tiny"], "refine": True})
    fleet.wait(lambda: "accepted" in fleet.ack_statuses(bench_id), 60, "the bench accepted")
    agent = fleet.agents["agent-1"]
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    assert "ok" not in fleet.ack_statuses(bench_id), "the bench finished before the kill"
    fleet.restart_agent("agent-1")
    fleet.wait(lambda: "error" in fleet.ack_statuses(bench_id), 60, "the bench's error ack")
    detail = fleet.api.get(f"/commands/{bench_id}").json()
    error = next(a for a in detail["acks"] if a["status"] == "error")
    assert "restart" in (error.get("reason") or "")
