"""Secrets never printed (finding 7): config errors name the key, the bootstrap token goes
to a 0600 file, not to stderr."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.controller_process import ROOT, ControllerProcess

SECRET = "S3cret-Value-That-Must-Not-Leak-41"


def _edgefleet(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env |= {"PYTHONPATH": str(ROOT), "EDGEFLEET_CONTROLLER_DATA_DIR": str(home / "data")}
    return subprocess.run(
        [sys.executable, "-P", "-m", "shared.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=home,
    )  # fmt: skip


def test_a_misspelt_secret_key_is_named_not_printed(tmp_path: Path) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text(f"mqtt_passwd: {SECRET}\n")
    result = _edgefleet("controller", "mosquitto-config", "-c", str(config), home=tmp_path)
    assert result.returncode == 2
    assert "mqtt_passwd" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_yaml_error_next_to_a_token_does_not_quote_it(tmp_path: Path) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text(f"bootstrap_admin_token: eft_{SECRET}\nbroker_url: [unclosed\n")
    result = _edgefleet("controller", "mosquitto-config", "-c", str(config), home=tmp_path)
    assert result.returncode == 2 and "line" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    agent = tmp_path / "agent.yaml"
    agent.write_text(f"device_id: pi-a\nmqtt_password: {SECRET}\nbroker_url: [unclosed\n")
    checked = _edgefleet("agent", "check-config", "--config", str(agent), home=tmp_path)
    assert checked.returncode != 0
    assert SECRET not in checked.stdout + checked.stderr


def test_a_bad_secret_value_is_named_not_printed(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(f"device_id: pi-a\nmqtt_password: {{nested: {SECRET}}}\n")
    checked = _edgefleet("agent", "check-config", "--config", str(agent), home=tmp_path)
    assert checked.returncode != 0 and "mqtt_password" in checked.stdout + checked.stderr
    assert SECRET not in checked.stdout + checked.stderr


def test_the_generated_bootstrap_token_goes_to_a_private_file_not_stderr(tmp_path: Path) -> None:
    controller = ControllerProcess(tmp_path, bootstrap_admin_token="")
    del controller.settings["BOOTSTRAP_ADMIN_TOKEN"]
    controller.start()
    try:
        token_file = tmp_path / "controller" / "bootstrap-admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        me = httpx.get(
            controller.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert me.status_code == 200 and me.json()["role"] == "admin"
        log = controller.log_tail(1_000_000)
        assert str(token_file) in log
        assert token not in log
    finally:
        controller.stop()
