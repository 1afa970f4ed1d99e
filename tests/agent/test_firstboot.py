"""The Pi first-boot script, run against a scratch root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRSTBOOT = ROOT / "firmware-config" / "firstboot" / "edgefleet-firstboot.sh"


def _edgefleet_wrapper(tmp_path: Path) -> Path:
    wrapper = tmp_path / "edgefleet"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m shared.cli "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EDGEFLEET_ROOT": str(tmp_path / "root"),
        "EDGEFLEET_BIN": str(_edgefleet_wrapper(tmp_path)),
    }
    return subprocess.run(
        ["bash", str(FIRSTBOOT)], env=env, capture_output=True, text=True, timeout=60
    )


def test_firstboot_moves_config_and_secrets_off_the_boot_partition(tmp_path: Path) -> None:
    boot = tmp_path / "root" / "boot" / "firmware"
    boot.mkdir(parents=True)
    shutil.copy(ROOT / "firmware-config" / "agent.example.yaml", boot / "edgefleet-agent.yaml")
    (boot / "edgefleet-agent.env").write_text("EDGEFLEET_AGENT_MQTT_PASSWORD=s3cret-pass\n")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    etc = tmp_path / "root" / "etc" / "edgefleet"
    assert (etc / "agent.yaml").read_text().startswith("# edgefleet agent configuration")
    assert (etc / "agent.env").stat().st_mode & 0o777 == 0o600
    assert not (boot / "edgefleet-agent.env").exists()
    assert (boot / "edgefleet-agent.yaml.applied").exists()
    assert "ok: device pi4-kitchen-01" in result.stdout


def test_firstboot_refuses_a_broken_config(tmp_path: Path) -> None:
    boot = tmp_path / "root" / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "edgefleet-agent.yaml").write_text("device_id: Not A Slug\n")
    result = _run(tmp_path)
    assert result.returncode != 0
    assert "device_id" in result.stdout
    assert (boot / "edgefleet-agent.yaml").exists()  # left in place to fix and retry


def test_units_point_at_the_paths_the_script_writes() -> None:
    unit = (FIRSTBOOT.parent / "edgefleet-agent.service").read_text()
    assert "--config /etc/edgefleet/agent.yaml" in unit
    assert "EnvironmentFile=-/etc/edgefleet/agent.env" in unit
    assert "ReadWritePaths=/var/lib/edgefleet" in unit
