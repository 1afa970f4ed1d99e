"""The roles' preflight stops a device that does not fit before anything is changed on it."""

from __future__ import annotations

from pathlib import Path

from tests.ansible.fleet import Layout, write_agents_inventory
from tests.ansible.harness import run_playbook

WRONG_ARCH = "pi4-wrong-arch"
NO_LOGIN = "pc-no-login"


def test_preflight_refuses_a_wrong_class_and_a_device_without_a_login_and_changes_nothing(
    tmp_path: Path,
) -> None:
    layout = Layout(root=tmp_path, pki=tmp_path / "pki", wheelhouse=tmp_path / "wheelhouse")
    layout.wheelhouse.mkdir()
    (layout.wheelhouse / "edgefleet-0.1.0-py3-none-any.whl").write_bytes(b"never installed")
    no_ca = {"edgefleet_agent_tls_ca_src": None}
    inventory = write_agents_inventory(
        layout,
        {
            # an aarch64 Pi class on this x86_64 machine, with a login
            WRONG_ARCH: {"edgefleet_agent_device_class": "pi4-4gb", **no_ca,
                         "edgefleet_agent_mqtt_password": "an-issued-mqtt-password-1"},
            # the right class, but no password, enrollment token or API token
            NO_LOGIN: {"edgefleet_agent_device_class": "dev-x86-1core", **no_ca},
        },
    )  # fmt: skip
    run = run_playbook(inventory, tmp_path / "ansible-home")
    assert run.returncode != 0
    assert "class pi4-4gb is for aarch64 with 4 threads; this device is x86_64" in run.output
    assert f"{NO_LOGIN} has no MQTT login yet" in run.output
    recap = run.recap
    assert {host: (recap[host]["failed"], recap[host]["changed"]) for host in recap} == {
        WRONG_ARCH: (1, 0),
        NO_LOGIN: (1, 0),
    }
    assert not layout.host(WRONG_ARCH).exists() and not layout.host(NO_LOGIN).exists()
