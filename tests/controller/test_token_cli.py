"""``edgefleet controller tokens create``: the bootstrap token, written straight into the
database by a real process, is then accepted by the API (``edgefleet tokens list``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import build_app
from tests.controller.api.conftest import start_api


def test_a_bootstrap_admin_token_from_the_database_works_over_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "EDGEFLEET_CONTROLLER_DATA_DIR": str(data)}
    created = subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", "tokens", "create", "ops",
         "--role", "admin"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("eft_") and "(admin) for ops" in created.stdout
    api = start_api(data)
    try:
        argv = ["tokens", "list", "--url", api.url, "--token", secret]
        listed = CliRunner().invoke(build_app(argv), argv)
    finally:
        api.server.stop()
        api.engine.dispose()
    assert listed.exit_code == 0, listed.stderr
    assert "ops" in listed.stdout and secret not in listed.stdout
