"""Device-class profiles for end-to-end tests: one thread each, budgets by class."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.profiles import DeviceProfile

E2E_CLASSES = {"e2e-small": 60, "e2e-big": 2000}
"""Memory budget in MB per class: the small one fits only the smallest tiny model."""


def write_profiles(
    directory: Path, classes: dict[str, int] = E2E_CLASSES, *, parallel: int = 1
) -> list[DeviceProfile]:
    """Write one YAML profile per class into ``directory`` and return them.

    ``parallel`` is 1 by default: these classes test planning, not batching (one
    sequence's KV); a test of conversations sharing a device asks for more.
    """
    directory.mkdir(parents=True, exist_ok=True)
    profiles = []
    for name, memory in classes.items():
        profile = DeviceProfile(
            name=name,
            arch="x86_64",
            memory_budget_mb=memory,
            latency_budget_s=60,
            disk_budget_mb=1000,
            threads=1,
            n_ctx=2048,
            memory_bandwidth_gbs=8,
            compute_gflops=40,
            standard_answer_tokens=64,
            parallel=parallel,
        )
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(profile.model_dump(mode="json")))
        profiles.append(profile)
    return profiles
