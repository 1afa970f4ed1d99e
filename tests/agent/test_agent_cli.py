"""`edgefleet agent ...` from this tree, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_check_config_accepts_the_example() -> None:
    result = _run("check-config", "--config", str(ROOT / "firmware-config" / "agent.example.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "class pi4-4gb" in result.stdout


def test_run_with_a_typo_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("device_id: pi-1\nbroker_ulr: mqtt://x\n")
    result = _run("run", "--config", str(config))
    assert result.returncode == 2
    assert "broker_ulr" in result.stdout and "Extra inputs" in result.stdout


def test_status_reports_what_the_agent_left_on_disk(tmp_path: Path) -> None:
    from agent.link.outbox import Outbox
    from shared.topics import TopicKind

    config = tmp_path / "agent.yaml"
    config.write_text(f"device_id: pi-1\ndata_dir: {tmp_path / 'data'}\n")
    assert "no agent data" in _run("status", "--config", str(config)).stdout
    box = Outbox(tmp_path / "data" / "agent.db")
    box.put(TopicKind.METRICS, "t", b"x")
    box.close()
    result = _run("status", "--config", str(config))
    assert result.returncode == 0 and "outbox depth 1" in result.stdout
