"""Process and machine measurements a benchmark records: peak RSS, CPU time, load."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

import psutil

CONTENDED_UTILISATION = 0.85
"""Below this share of CPU per llama.cpp thread, other work was competing for the cores."""


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB (10^6 bytes).

    VmHWM where Linux has it: ``ru_maxrss`` survives exec, so a process started
    by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


@dataclass
class CpuMeter:
    """CPU seconds and wall seconds of this process between start() and stop()."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    _cpu0: float = 0.0
    _wall0: float = 0.0

    def start(self) -> CpuMeter:
        """Begin (or resume) measuring."""
        times = psutil.Process().cpu_times()
        self._cpu0, self._wall0 = times.user + times.system, time.perf_counter()
        return self

    def stop(self) -> None:
        """Add the time since start()."""
        times = psutil.Process().cpu_times()
        self.cpu_s += times.user + times.system - self._cpu0
        self.wall_s += time.perf_counter() - self._wall0

    def utilisation(self, threads: int) -> float:
        """CPU seconds per thread per wall second: near 1 when the threads had their cores."""
        return self.cpu_s / (self.wall_s * threads) if self.wall_s > 0 and threads else 0.0


def is_contended(*, threads: int, load_before: float, utilisation: float | None) -> bool:
    """Whether other busy threads competed with llama.cpp's during a run.

    Either the machine was already busy (load before + our threads > cores), or
    our threads got clearly less than a core each while computing.
    """
    cores = os.cpu_count() or 1
    if load_before + threads > cores + 0.5:
        return True
    return utilisation is not None and utilisation < CONTENDED_UTILISATION
