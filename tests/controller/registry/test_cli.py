"""``edgefleet controller models|tokens``: real subprocesses over a real SQLite file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[3]


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "EDGEFLEET_CONTROLLER_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_models_import_list_delete(tmp_path: Path, tiny_gguf: Path) -> None:
    data = tmp_path / "data"
    imported = _run(data, "models", "import", str(tiny_gguf), "--id", "tiny")
    assert imported.returncode == 0, imported.stderr
    digest = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert f"sha256={digest}" in imported.stdout
    assert (data / "models" / f"{digest}.gguf").read_bytes() == tiny_gguf.read_bytes()
    listed = _run(data, "models", "list")
    assert listed.stdout.startswith("tiny\tQ4_0\t")
    again = _run(data, "models", "import", str(tiny_gguf), "--id", "tiny")
    assert again.returncode == 1 and "already in the registry" in again.stderr
    assert _run(data, "models", "delete", "tiny").returncode == 0
    assert not (data / "models" / f"{digest}.gguf").exists()
    assert "no models" in _run(data, "models", "list").stdout


def test_models_import_refuses_a_non_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "notes.gguf"
    junk.write_text("just text")
    result = _run(tmp_path / "data", "models", "import", str(junk))
    assert result.returncode == 1
    assert "not a GGUF file" in result.stderr


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = _run(data, "tokens", "create", "grafana", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("eft_")
    listed = _run(data, "tokens", "list").stdout
    assert "viewer\tgrafana" in listed and secret not in listed
    token_id = listed.split("\t", 1)[0]
    assert _run(data, "tokens", "revoke", token_id).returncode == 0
    assert "revoked" in _run(data, "tokens", "list").stdout
