"""Child processes of a local fleet: started with their own log, stopped together, no orphans.

Each child runs in its own session, so a Ctrl-C in the terminal reaches only
the demo, which then stops the children in order (agents before the
controller, as a real shutdown would), each with the processes it started
(an agent's benchmark runs in a worker process of its own). On Linux each child also asks the
kernel for SIGTERM when the thread that started it dies, so even a demo that
is killed outright leaves nothing running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 30.0
"""How long a child may take to stop on SIGTERM (an agent finishes its command and
flushes its outbox) before it is killed."""
KILL_WAIT_S = 10.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One started process and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None


class ProcessGroup:
    """The processes one fleet started; :meth:`stop` ends every one of them."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(
        self, name: str, argv: Sequence[str], *, log: Path, env: Mapping[str, str], cwd: Path
    ) -> Child:
        """Start ``argv`` with stdout and stderr appended to ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop every child, newest first, each before the next (agents before their broker)."""
        while self.children:
            self._stop_one(self.children.pop(), timeout)

    @staticmethod
    def _stop_one(child: Child, timeout: float) -> None:
        """SIGTERM its process group, SIGKILL it after ``timeout``; then sweep what is left."""
        _signal_group(child, signal.SIGTERM)
        _signal_group(child, signal.SIGCONT)  # a stopped process must see SIGTERM
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s: killed", child.name, timeout)
            _signal_group(child, signal.SIGKILL)
            child.process.wait(timeout=KILL_WAIT_S)
        _signal_group(child, signal.SIGKILL)  # helpers it started (a benchmark's worker)


def _signal_group(child: Child, signum: int) -> None:
    """Signal the child and everything it started (its own session: pgid = its pid)."""
    try:
        os.killpg(child.process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the whole group has exited already


def python_command(*args: str) -> list[str]:
    """``edgefleet ARGS`` run by this interpreter (works without the console script on PATH).

    ``-P`` keeps the working directory off ``sys.path``: a fleet's work dir holds a
    ``controller/`` data dir, which would otherwise shadow the installed package.
    """
    return [sys.executable, "-P", "-m", "shared.cli", *args]
