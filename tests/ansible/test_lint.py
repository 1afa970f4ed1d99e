"""The Ansible tree passes ansible-lint's production profile and ansible-playbook's syntax check."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ansible.harness import ANSIBLE_DIR, BIN, ansible_env


def _run(tool: str, *args: str, home: Path) -> str:
    """Run an ansible tool from ansible/; its output, after asserting it succeeded."""
    result = subprocess.run(
        [str(BIN / tool), *args],
        cwd=ANSIBLE_DIR, env=ansible_env(home), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_ansible_lint_production_profile_passes_on_the_whole_tree(tmp_path: Path) -> None:
    # the profile and offline mode are in ansible/.ansible-lint; the flags say it again here
    lint = ("ansible-lint", "--profile", "production", "--offline", "--nocolor")
    output = _run(*lint, home=tmp_path)
    assert "Profile 'production' was required, and it passed" in output


def test_site_yml_passes_the_syntax_check_with_the_example_inventory(tmp_path: Path) -> None:
    output = _run(
        "ansible-playbook", "--syntax-check", "-i", "inventory/example", "site.yml", home=tmp_path
    )
    assert "[WARNING]" not in output
