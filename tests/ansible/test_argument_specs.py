"""Every role default is documented in meta/argument_specs.yml, with the same value."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.ansible.harness import ANSIBLE_DIR

ROLES = sorted(p.name for p in (ANSIBLE_DIR / "roles").iterdir() if p.is_dir())


def _load(role: str, path: str) -> dict[str, Any]:
    return yaml.safe_load((ANSIBLE_DIR / "roles" / role / path).read_text()) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_document_every_default_with_its_value(role: str) -> None:
    defaults = _load(role, "defaults/main.yml")
    options = _load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    documented = {name: spec["default"] for name, spec in options.items() if "default" in spec}
    assert documented == defaults
    required = {name for name, spec in options.items() if spec.get("required")}
    assert not required & set(defaults)
    assert all(name.startswith(f"{role}_") for name in options)
    assert all(spec.get("description") for spec in options.values())
