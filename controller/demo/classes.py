"""The demo's device classes: real profiles from firmware-config/classes, one thread each.

This machine stands in for every device, so each class keeps its budgets
(memory, latency, context) but runs llama.cpp on one thread: two agents then
share two cores without slowing each other down. The controller and the
agents read the same copies, so the plan and the devices agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from shared.profiles import DeviceProfile, ProfileError, parse_profile

REPO_CLASSES_DIR = Path(__file__).resolve().parents[2] / "firmware-config" / "classes"
DEMO_THREADS = 1


def write_demo_classes(
    target: Path, names: Iterable[str], *, source: Path = REPO_CLASSES_DIR
) -> dict[str, DeviceProfile]:
    """Copy the named profiles into ``target`` with ``threads: 1``; return them validated."""
    target.mkdir(parents=True, exist_ok=True)
    profiles = {}
    for name in names:
        path = source / f"{name}.yaml"
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
        base = parse_profile(text, source=str(path))
        note = f" (demo: {DEMO_THREADS} llama.cpp thread on this machine)"
        profile = base.model_copy(
            update={"threads": DEMO_THREADS, "description": base.description + note}
        )
        (target / path.name).write_text(yaml.safe_dump(profile.model_dump(mode="json")))
        profiles[name] = profile
    return profiles
