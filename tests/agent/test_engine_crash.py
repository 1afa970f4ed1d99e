"""Crashes are named from how the child really died: real faults, a real OOM kill."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.engine.crash import name_exit, oom_kills
from tests.support.faults import python_dying_by

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("fault", "fix_mentions"),
    [("SIGSEGV", "AMX"), ("SIGILL", "CPU variant"), ("SIGBUS", "re-download")],
)
def test_a_child_killed_by_a_fault_is_named_with_a_fix(fault: str, fix_mentions: str) -> None:
    returncode = subprocess.run(python_dying_by(fault), capture_output=True).returncode
    crash = name_exit(returncode)
    assert crash is not None
    assert crash.how == fault
    assert fix_mentions in crash.fix
    assert crash.describe("the benchmark process").startswith(
        f"the benchmark process died: {fault}"
    )


def test_a_clean_exit_is_no_crash_and_an_error_exit_says_its_status() -> None:
    assert name_exit(0) is None
    crash = name_exit(3)
    assert crash is not None and crash.how == "exit status 3"


def test_a_timeout_is_named_as_such() -> None:
    crash = name_exit(0, timeout_s=30)
    assert crash is not None and crash.how == "timeout" and "30 s" in crash.meaning


def _memory_cgroup(limit_bytes: int, name: str) -> Path:
    """A child memory cgroup of this process's own (cgroup v1 or v2) with a limit."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory"]
    if v1:
        group = Path("/sys/fs/cgroup/memory") / v1[0].lstrip("/") / name
        limit_file = "memory.limit_in_bytes"
    else:
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        group = Path("/sys/fs/cgroup") / path.lstrip("/") / name
        limit_file = "memory.max"
    group.mkdir()
    (group / limit_file).write_text(str(limit_bytes))
    return group


def test_an_oom_kill_is_told_apart_from_another_sigkill(tmp_path: Path) -> None:
    group = _memory_cgroup(64 * MB, f"edgefleet-test-{os.getpid()}")
    try:
        hog = (
            f"open({str(group / 'cgroup.procs')!r}, 'w').write(str(__import__('os').getpid()))\n"
            "block = bytearray(512 * 1024 * 1024)\n"
            "for i in range(0, len(block), 4096): block[i] = 1\n"
        )
        before = oom_kills()
        returncode = subprocess.run([sys.executable, "-c", hog]).returncode
        crash = name_exit(returncode, oom_killed=oom_kills() > before)
    finally:
        group.rmdir()
    assert crash is not None and crash.how == "OOM-killed"
    assert "smaller model" in crash.fix
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.kill()
    other = name_exit(killed.wait(), oom_killed=False)
    assert other is not None and other.how == "SIGKILL" and "from outside" in other.meaning
