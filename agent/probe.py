"""What hardware this agent runs on, and its vital signs, for hello and heartbeat."""

from __future__ import annotations

import logging
import os
import platform
import shutil
from pathlib import Path

import psutil

from shared.messages import HardwareInfo

logger = logging.getLogger(__name__)
MB = 1_000_000
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
THERMAL_ROOT = Path("/sys/class/thermal")
CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's marketing name (x86) or its ``Model``/``Hardware`` line (ARM)."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return platform.processor() or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or ""


def pi_model(path: Path = DEVICE_TREE_MODEL) -> str | None:
    """The Raspberry Pi model string, or None on anything else."""
    try:
        text = path.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
    except OSError:
        return None
    return text or None


def soc_temperature(root: Path = THERMAL_ROOT) -> float | None:
    """SoC temperature in degrees C from the first readable thermal zone, if any."""
    zones = sorted(root.glob("thermal_zone*/temp")) if root.is_dir() else []
    for zone in zones:
        try:
            return int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


def disk_free_mb(path: Path) -> float:
    """Free space where ``path`` lives (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free / MB


def probe_hardware(data_dir: Path) -> HardwareInfo:
    """Probe once at start-up; cheap enough to repeat on re-announce."""
    memory = psutil.virtual_memory()
    return HardwareInfo(
        arch=platform.machine() or "unknown",
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 1,
        ram_total_mb=memory.total / MB,
        ram_available_mb=memory.available / MB,
        disk_free_mb=disk_free_mb(data_dir),
        pi_model=pi_model(),
        temperature_c=soc_temperature(),
    )


def load_1m() -> float:
    """The one-minute load average (0 where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def rss_mb() -> float:
    """Resident memory of this process (the model is mapped into it)."""
    return psutil.Process().memory_info().rss / MB


def mem_available_mb() -> float:
    """Memory available to new allocations."""
    return psutil.virtual_memory().available / MB
