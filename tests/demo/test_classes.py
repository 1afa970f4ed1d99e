"""The demo's class profiles: the repository's budgets, one llama.cpp thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.demo.classes import REPO_CLASSES_DIR, write_demo_classes
from shared.profiles import ProfileError, parse_profile


def test_demo_classes_keep_the_budgets_and_run_one_thread(tmp_path: Path) -> None:
    written = write_demo_classes(tmp_path, ["pizero2w-512mb", "pi4-4gb"])

    for name, profile in written.items():
        original = parse_profile((REPO_CLASSES_DIR / f"{name}.yaml").read_text())
        on_disk = parse_profile((tmp_path / f"{name}.yaml").read_text())
        assert on_disk == profile
        assert profile.threads == 1 and original.threads == 4
        assert profile.model_dump(exclude={"threads", "description"}) == original.model_dump(
            exclude={"threads", "description"}
        )
        assert profile.description.startswith(original.description)


def test_an_unknown_class_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no-such-class.yaml: cannot read"):
        write_demo_classes(tmp_path, ["no-such-class"])
