"""The Ansible tree passes ansible-lint's production profile and ansible-playbook's syntax check."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ansible.harness import ANSIBLE_DIR, BIN, ansible_env


def test_ansible_lint_production_profile_passes_on_the_whole_tree(tmp_path: Path) -> None:
    # the profile and offline mode are in ansible/.ansible-lint; --profile says it again here
    result = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
        cwd=ANSIBLE_DIR, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_site_yml_passes_the_syntax_check_with_the_example_inventory(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/example", "site.yml"],
        cwd=ANSIBLE_DIR, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr
