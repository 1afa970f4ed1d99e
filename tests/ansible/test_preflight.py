"""The roles' preflight stops a device that does not fit before anything is changed on it."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.ansible.fleet import SERVER, Layout, write_agents_inventory
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


def test_preflight_refuses_a_broker_without_a_listener_for_the_controller(tmp_path: Path) -> None:
    # the device listener refuses the controller's login, so the controller needs one of its own
    for name in ("server.crt", "server.key"):
        (tmp_path / name).write_text("checked for existence only: preflight stops first")
    files = tmp_path / SERVER / "etc/mosquitto"
    broker = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ansible_become": False, "edgefleet_broker_manage_packages": False,
        "edgefleet_broker_manage_service": False,
        "edgefleet_broker_config_file": str(files / "mosquitto.conf"),
        "edgefleet_broker_files_dir": str(files / "edgefleet"),
        "edgefleet_broker_tls_cert_src": str(tmp_path / "server.crt"),
        "edgefleet_broker_tls_key_src": str(tmp_path / "server.key"),
    }  # fmt: skip
    inventory = tmp_path / "broker.yml"
    # the controller host is in the inventory (the broker's logins come from it) but not run
    groups = {"broker": {"hosts": {SERVER: broker}}, "controller": {"hosts": {"elsewhere": None}}}
    inventory.write_text(yaml.safe_dump({"all": {"children": groups}}))
    run = run_playbook(inventory, tmp_path / "ansible-home", "--limit", SERVER)
    assert run.returncode != 0
    assert "the devices' TLS port and the controller's ports" in run.output, run.tail()
    assert (run.recap[SERVER]["failed"], run.recap[SERVER]["changed"]) == (1, 0)
    assert not files.exists()
