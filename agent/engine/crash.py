"""Name how a child process running llama.cpp died, and what to do about it.

A bare "the process died" sends an operator guessing. The exit status says the
signal; a SIGKILL is told apart as the kernel's OOM killer's when the kernel's
``oom_kill`` counter (``/proc/vmstat``: every OOM kill, system-wide or in a memory
cgroup, on cgroup v1 and v2 alike) rose while the child ran.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

REBUILD = "reinstall the engine built for this fleet (make venv, or the architecture's wheelhouse)"
_SIGNALS: dict[int, tuple[str, str]] = {
    signal.SIGSEGV: (
        "invalid memory access inside llama.cpp",
        "if this is an Intel Xeon with AMX and GCC 12, the engine was built with AMX "
        f"(-march=native): {REBUILD}; else re-download the model (its sha256 is checked)",
    ),
    signal.SIGILL: (
        "an instruction this CPU does not have (an engine compiled for another CPU)",
        f"{REBUILD}: it picks the CPU variant at run time",
    ),
    signal.SIGBUS: (
        "the memory-mapped model file changed, shrank or could not be read",
        "re-download the model (its sha256 is checked) and check the disk",
    ),
    signal.SIGFPE: ("an arithmetic fault inside llama.cpp", REBUILD),
    signal.SIGABRT: (
        "llama.cpp aborted (a failed assertion)",
        "check the model file and the agent log; re-download the model",
    ),
}
_OOM = (
    "killed by the kernel's OOM killer (out of memory)",
    "assign a smaller model or a smaller context (n_ctx), or stop what else uses the memory",
)


def oom_kills(vmstat: Path = Path("/proc/vmstat")) -> int:
    """The kernel's count of OOM kills since boot (0 where it has none)."""
    try:
        for line in vmstat.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


@dataclass(frozen=True)
class Crash:
    """How a child died: ``how`` names it (SIGSEGV, OOM-killed, timeout, exit status)."""

    how: str
    meaning: str
    fix: str

    def describe(self, what: str) -> str:
        """One sentence for an ack, a state detail or a report: what died, how, what to do."""
        return f"{what} died: {self.how} ({self.meaning}); fix: {self.fix}"


def name_exit(
    returncode: int, *, oom_killed: bool = False, timeout_s: float | None = None
) -> Crash | None:
    """Name a child's end from its exit status (negative: a signal); None for a clean exit.

    ``timeout_s`` is given when the parent killed the child for taking too long.
    """
    if timeout_s is not None:
        return Crash(
            "timeout",
            f"no result within {timeout_s:.0f} s, so it was stopped",
            "the machine is overloaded or the model is too slow for it; "
            "retry when it is idle, or use a smaller model",
        )
    if returncode == 0:
        return None
    if returncode > 0:
        return Crash(
            f"exit status {returncode}",
            "it stopped with an error",
            "see the log lines above it",
        )
    signum = -returncode
    if signum == signal.SIGKILL and oom_killed:
        return Crash("OOM-killed", *_OOM)
    name = _signal_name(signum)
    if signum in _SIGNALS:
        return Crash(name, *_SIGNALS[signum])
    return Crash(name, "killed by a signal from outside", "see who stopped it (systemd, a user)")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
