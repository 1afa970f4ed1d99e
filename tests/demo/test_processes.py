"""ProcessGroup with real processes: helpers stop with their child, a stubborn one is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from controller.demo.processes import ProcessGroup, python_command

SPAWNS_A_HELPER = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(helper.pid, flush=True)
time.sleep(600)
"""
NOTES_ITS_SIGTERM = """
import signal, sys, time
def note(*_):
    print(time.monotonic(), flush=True)
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, note)
print("up", flush=True)
time.sleep(600)
"""
IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


def _start(group: ProcessGroup, tmp_path: Path, name: str, code: str) -> Path:
    log = tmp_path / f"{name}.log"
    group.start(name, [sys.executable, "-c", code], log=log, env={}, cwd=tmp_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not log.read_text().strip():
        time.sleep(0.05)
    return log


def test_stop_ends_a_child_and_the_helper_it_started(tmp_path: Path) -> None:
    group = ProcessGroup()
    log = _start(group, tmp_path, "parent", SPAWNS_A_HELPER)
    child = group.children[0]
    helper = psutil.Process(int(log.read_text().split()[0]))
    assert helper.ppid() == child.process.pid and helper.is_running()

    group.stop(timeout=5)

    assert child.process.returncode is not None
    helper.wait(timeout=5)  # raises if the helper is still running
    assert group.children == []


def test_stop_kills_a_child_that_ignores_sigterm_after_the_timeout(tmp_path: Path) -> None:
    group = ProcessGroup()
    _start(group, tmp_path, "stubborn", IGNORES_SIGTERM)
    process = group.children[0].process
    started = time.monotonic()
    group.stop(timeout=1)
    assert process.returncode == -9
    assert 1 <= time.monotonic() - started < 10


def test_stop_goes_newest_first_each_child_in_its_own_session(tmp_path: Path) -> None:
    group = ProcessGroup()
    logs = [_start(group, tmp_path, name, NOTES_ITS_SIGTERM) for name in ("first", "second")]
    first, second = (c.process for c in group.children)
    assert os.getpgid(first.pid) == first.pid != os.getpgid(0)  # Ctrl-C reaches only us
    group.stop(timeout=5)
    assert first.returncode == second.returncode == 0
    first_at, second_at = (float(log.read_text().split()[-1]) for log in logs)
    assert second_at + 0.3 <= first_at  # the second had exited before the first was told


def test_a_work_dir_holding_a_controller_data_dir_does_not_shadow_the_package(
    tmp_path: Path,
) -> None:
    """The demo's work dir has ``controller/models/``; children run there must still start."""
    (tmp_path / "controller" / "models").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as `make demo` runs it
    done = subprocess.run(
        python_command("controller", "tokens", "--help"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
