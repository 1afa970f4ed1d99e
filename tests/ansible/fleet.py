"""The test fleet: one server (controller + broker) and two agents of two classes, all local."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVER = "fleet-server"
AGENTS = {"dev-ci-01": "dev-x86-1core", "laptop-lab-01": "old-laptop-4gb"}
"""Agent host -> device class; dev-ci-01 enrolls with a one-time token, the laptop with the
admin token."""
CONTROLLER_PASSWORD = "controller-mqtt-secret-0d9f3a"
ADMIN_TOKEN = "ansible-test-admin-token-5b0c1e9a2f7d"
LAPTOP_OVERRIDES = {"n_ctx": 1024}
BASE_SYSTEM_DIRS = ("usr/local/sbin", "etc/systemd/system", "etc/mosquitto")


@dataclass(frozen=True)
class Ports:
    """Loopback ports of this run: Mosquitto's listeners (devices' TLS, the controller's TLS and
    plain), the controller API."""

    tls: int
    controller_tls: int
    local: int
    api: int


@dataclass(frozen=True)
class Layout:
    """Where each host's files go: ``<root>/<host>/`` stands for that host's ``/``."""

    root: Path
    pki: Path
    wheelhouse: Path

    def host(self, name: str) -> Path:
        """The stand-in for ``/`` on host ``name``."""
        return self.root / name

    def make_base_system(self, name: str) -> None:
        """The directories a Debian host has before the roles run (mosquitto's from its package)."""
        for directory in BASE_SYSTEM_DIRS:
            (self.host(name) / directory).mkdir(parents=True, exist_ok=True)

    def venv(self, name: str) -> Path:
        """The virtualenv the roles install into on host ``name``."""
        return self.host(name) / "opt/edgefleet/venv"

    def controller_config(self) -> Path:
        """controller.yaml as the controller role writes it."""
        return self.host(SERVER) / "etc/edgefleet/controller.yaml"

    def controller_cli(self) -> Path:
        """The edgefleet-controller command (edgefleet with the service's secrets)."""
        return self.host(SERVER) / "usr/local/sbin/edgefleet-controller"

    def mosquitto_conf(self) -> Path:
        """mosquitto.conf as the broker role writes it."""
        return self.host(SERVER) / "etc/mosquitto/mosquitto.conf"

    def agent_config_dir(self, name: str) -> Path:
        """/etc/edgefleet of agent ``name``."""
        return self.host(name) / "etc/edgefleet"


def _common_vars(layout: Layout) -> dict[str, Any]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,  # already root, and there is no sudo here
        "edgefleet_broker_manage_packages": False,
        "edgefleet_broker_manage_service": False,
        **{
            f"edgefleet_{role}_{key}": value
            for role in ("controller", "agent")
            for key, value in {
                "manage_packages": False,
                "manage_user": False,
                "manage_service": False,
                "user": "root",
                "group": "root",
                "wheelhouse": str(layout.wheelhouse),
            }.items()
        },  # fmt: skip
    }


def _server_vars(layout: Layout, ports: Ports) -> dict[str, Any]:
    srv = layout.host(SERVER)
    controller = {
        "install_dir": srv / "opt/edgefleet", "config_dir": srv / "etc/edgefleet",
        "data_dir": srv / "var/lib/edgefleet/controller", "bin_dir": srv / "usr/local/sbin",
        "systemd_dir": srv / "etc/systemd/system", "api_port": ports.api,
        "broker_url": f"mqtts://127.0.0.1:{ports.controller_tls}",
        "broker_ca_src": layout.pki / "ca.crt", "mqtt_password": CONTROLLER_PASSWORD,
        "bootstrap_admin_token": ADMIN_TOKEN, "settings": {"planner_loop": False},
    }  # fmt: skip
    broker = {
        "config_file": layout.mosquitto_conf(), "files_dir": srv / "etc/mosquitto/edgefleet",
        "data_dir": srv / "var/lib/mosquitto", "pid_file": srv / "var/lib/mosquitto/pid",
        "run_user": "root", "group": "root", "tls_port": ports.tls, "tls_bind": "127.0.0.1",
        "local_port": ports.local, "controller_tls_port": ports.controller_tls,
        "controller_tls_bind": "127.0.0.1", "tls_cert_src": layout.pki / "server.crt",
        "tls_key_src": layout.pki / "server.key", "registry_become": False,
        "registry_user": "root", "registry_command": layout.controller_cli(),
        "registry_config": layout.controller_config(),
        "registry_dir": srv / "var/lib/edgefleet/controller/broker",
    }  # fmt: skip
    return {
        **{f"edgefleet_controller_{k}": _plain(v) for k, v in controller.items()},
        **{f"edgefleet_broker_{k}": _plain(v) for k, v in broker.items()},
    }


def _agent_vars(layout: Layout, ports: Ports, name: str) -> dict[str, Any]:
    host = layout.host(name)
    agent = {
        "install_dir": host / "opt/edgefleet", "config_dir": layout.agent_config_dir(name),
        "data_dir": host / "var/lib/edgefleet", "systemd_dir": host / "etc/systemd/system",
        "broker_url": f"mqtts://127.0.0.1:{ports.tls}",
        "controller_url": f"http://127.0.0.1:{ports.api}", "tls_ca_src": layout.pki / "ca.crt",
    }  # fmt: skip
    return {f"edgefleet_agent_{k}": _plain(v) for k, v in agent.items()}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def write_inventory(layout: Layout, ports: Ports) -> Path:
    """inventory/hosts.yml: groups controller, broker and agents with one child per class."""
    laptop = {"edgefleet_agent_controller_api_token": ADMIN_TOKEN,
              "edgefleet_agent_profile_overrides": LAPTOP_OVERRIDES}  # fmt: skip
    classes = {
        device_class.replace("-", "_"): {
            "hosts": {name: _agent_vars(layout, ports, name)},
            "vars": {"edgefleet_agent_device_class": device_class},
        }
        for name, device_class in AGENTS.items()
    }
    classes["old_laptop_4gb"]["hosts"]["laptop-lab-01"] |= laptop
    inventory = {
        "all": {
            "vars": _common_vars(layout),
            "children": {
                "controller": {"hosts": {SERVER: _server_vars(layout, ports)}},
                "broker": {"hosts": {SERVER: None}},
                "agents": {"children": classes},
            },
        }
    }
    path = layout.root / "inventory" / "hosts.yml"
    (path.parent / "host_vars").mkdir(parents=True)
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def give_enrollment_token(inventory: Path, host: str, token: str) -> None:
    """host_vars/<host>.yml with a one-time enrollment token, as an operator would vault it."""
    vars_file = inventory.parent / "host_vars" / f"{host}.yml"
    vars_file.write_text(yaml.safe_dump({"edgefleet_agent_enrollment_token": token}))


def write_agents_inventory(layout: Layout, agents: dict[str, dict[str, Any]]) -> Path:
    """An inventory of agents only, each with its own extra variables (no controller, no broker)."""
    # never reached: preflight stops these plays
    ports = Ports(tls=8883, controller_tls=8884, local=1883, api=8000)
    hosts = {name: _agent_vars(layout, ports, name) | extra for name, extra in agents.items()}
    inventory = {"all": {"vars": _common_vars(layout), "children": {"agents": {"hosts": hosts}}}}
    path = layout.root / "agents.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path
