"""Where device-class profiles come from when the settings do not say."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CLASSES_DIR = Path(__file__).resolve().parents[2] / "firmware-config" / "classes"
"""The repository's profiles (``firmware-config/classes``); deployments set
``device_classes_dir`` instead. They are validated by ``shared.profiles`` when loaded."""
