"""The agent checks its engine before it serves, and names a benchmark child's crash.

The faults are real: a ``sitecustomize`` on the children's PYTHONPATH makes a child die
by SIGSEGV or SIGILL when it imports llama_cpp, as a miscompiled or wrongly targeted
llama.cpp would; this test process (already running) is untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.messages import AssignCommand, BenchCommand
from tests.agent.command_harness import Harness
from tests.agent.daemon_support import wait_until
from tests.support.faults import crash_on_import

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def _faulty_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    faulty = crash_on_import(tmp_path / "fault", "llama_cpp", fault)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(faulty), str(ROOT)]))


def test_a_broken_engine_leaves_the_device_in_error_and_refuses_work(
    broker, tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _faulty_children(tmp_path, monkeypatch, "SIGILL")
    harness = Harness(broker, tmp_path, tiny_gguf)
    try:
        hello = harness.recorder.of_kind("hello")[-1]["body"]
        assert hello["engine"]["ok"] is False and hello["engine"]["crash"] == "SIGILL"
        state = harness.recorder.of_kind("state")[-1]["body"]
        assert state["activity"] == "error" and "SIGILL" in state["detail"]
        assert state.get("model_id") is None  # the initial model was never loaded into it
        for command in (
            AssignCommand(
                command_id="a-1", model_id="m", sha256="0" * 64, url="http://x/m", size_bytes=1
            ),
            BenchCommand(command_id="b-1"),
        ):
            harness.send(command)
            ack = harness.final_ack(command.command_id)
            assert ack["status"] == "error"
            assert ack["reason"].startswith("this device's engine cannot run models")
            assert "SIGILL" in ack["reason"] and "fix:" in ack["reason"]
        state = harness.recorder.of_kind("state")[-1]["body"]
        assert state["activity"] == "error" and "SIGILL" in state["detail"]  # still says why
    finally:
        harness.close()


def test_a_bench_child_killed_by_sigsegv_is_named_in_the_ack_and_the_state(
    broker, tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(broker, tmp_path, tiny_gguf)  # a working engine, serving the tiny model
    try:
        hello = harness.recorder.of_kind("hello")[-1]["body"]
        assert hello["engine"]["ok"] is True
        _faulty_children(tmp_path, monkeypatch, "SIGSEGV")  # from now on, children crash
        harness.send(BenchCommand(command_id="b-crash", max_questions=1))
        ack = harness.final_ack("b-crash", timeout=240)
        assert ack["status"] == "error"
        assert "died: SIGSEGV (invalid memory access inside llama.cpp); fix:" in ack["reason"]
        assert wait_until(
            lambda: "SIGSEGV" in (harness.recorder.of_kind("state")[-1]["body"]["detail"] or "")
        )
        assert harness.chat().status_code == 200  # serving goes on in the agent itself
    finally:
        harness.close()
