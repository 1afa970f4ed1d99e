"""``edgefleet controller suites`` as a real process over a real database file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from shared.suites.builtin import builtin_bytes

ROOT = Path(__file__).resolve().parents[2]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_CONTROLLER_")}
    env |= {"PYTHONPATH": str(ROOT), "EDGEFLEET_CONTROLLER_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "controller", "suites", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upload_list_show_delete_and_a_bad_file_named_line_by_line(tmp_path: Path) -> None:
    data = builtin_bytes("gsm8k-sample")
    path = tmp_path / "school-math.jsonl"
    path.write_bytes(data)
    uploaded = _cli(tmp_path, "upload", str(path))
    assert uploaded.returncode == 0, uploaded.stderr
    assert f"school-math  version 1  sha256={hashlib.sha256(data).hexdigest()}" in uploaded.stdout
    listed = _cli(tmp_path, "list")
    assert listed.stdout.startswith("school-math\tv1\t100 exact\t")
    shown = _cli(tmp_path, "show", "school-math")
    assert "  gsm8k-test-0005\texact\tmath" in shown.stdout.splitlines()
    again = _cli(tmp_path, "upload", str(path))
    assert again.returncode == 1 and "exists" in again.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "type": "exact", "question": "q"}\n[1]\n')
    refused = _cli(tmp_path, "upload", str(bad))
    assert refused.returncode == 1
    assert [line for line in refused.stderr.splitlines() if str(bad) in line] == [
        f"error: {bad}: line 1: answer: Field required",
        f"{bad}: line 2: expected a JSON object",
    ]
    assert _cli(tmp_path, "delete", "school-math").returncode == 0
    assert _cli(tmp_path, "list").stdout.strip() == "no suites"
