"""Device-class profiles read from ``firmware-config/classes`` (validated by shared.profiles)."""

from __future__ import annotations

import logging
from pathlib import Path

from shared.profiles import DeviceProfile, ProfileError, parse_profile

logger = logging.getLogger(__name__)

DEFAULT_CLASSES_DIR = Path(__file__).resolve().parents[2] / "firmware-config" / "classes"
"""The repository's profiles; deployments point the setting elsewhere."""


def load_profiles(directory: Path) -> dict[str, DeviceProfile]:
    """Every ``*.yaml`` profile in ``directory`` by name; a bad file is an error naming it."""
    profiles: dict[str, DeviceProfile] = {}
    if not directory.is_dir():
        logger.warning("device-class directory %s does not exist; no classes loaded", directory)
        return profiles
    for path in sorted(directory.glob("*.yaml")):
        profile = parse_profile(path.read_text(), source=str(path))
        if profile.name in profiles:
            raise ProfileError(f"{path}: class {profile.name!r} is defined twice")
        profiles[profile.name] = profile
    return profiles
