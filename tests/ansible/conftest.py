"""site.yml run three times against this machine, with a real Mosquitto and controller between.

1. ``--limit fleet-server``: the controller and the broker (no agent has a login yet);
2. Mosquitto starts with the rendered mosquitto.conf and the controller with the installed
   ``edgefleet-controller controller run`` (what the systemd units would do); the operator
   makes a one-time enrollment token for dev-ci-01;
3. the whole site.yml: the agents enroll through the controller's API (dev-ci-01 with its
   token, laptop-lab-01 with the admin token), the broker gets their logins; Mosquitto is
   sent SIGHUP as the reload handler would;
4. the whole site.yml again, which must change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from tests.ansible.fleet import (
    ADMIN_TOKEN,
    AGENTS,
    SERVER,
    Layout,
    Ports,
    give_enrollment_token,
    write_inventory,
)
from tests.ansible.harness import (
    PlaybookRun,
    Process,
    build_wheel,
    clean_env,
    dependency_overlay,
    prepare_venv,
    run_playbook,
    running,
)
from tests.support.broker import MOSQUITTO
from tests.support.ports import free_port
from tests.support.tls import make_pki

TOKEN_HOST = "dev-ci-01"


@dataclass(frozen=True)
class Provisioned:
    """What the runs left: files under ``layout``, the three runs, the live broker."""

    layout: Layout
    ports: Ports
    server_run: PlaybookRun
    fleet_run: PlaybookRun
    second_run: PlaybookRun
    broker: Process
    enrollment_token: str


def _enrollment_token(api_port: int, device_id: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{api_port}/api/v1/enrollment-tokens",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        json={"device_id": device_id, "device_class": AGENTS[device_id]}, timeout=10,
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["token"])


def _prepare(layout: Layout) -> None:
    make_pki(layout.pki)
    build_wheel(layout.wheelhouse, layout.root / "build")
    overlay = dependency_overlay(layout.root / "dependencies")
    for host in (SERVER, *AGENTS):
        layout.make_base_system(host)
        prepare_venv(layout.venv(host), overlay)


@pytest.fixture(scope="package")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    """The fleet after all runs, with Mosquitto (and the controller) still running."""
    root = tmp_path_factory.mktemp("fleet")
    layout = Layout(root=root, pki=root / "pki", wheelhouse=root / "wheelhouse")
    ports = Ports(tls=free_port(), controller_tls=free_port(), local=free_port(), api=free_port())
    _prepare(layout)
    inventory = write_inventory(layout, ports)
    home = root / "ansible-home"
    server_run = run_playbook(inventory, home, "--limit", SERVER)
    assert server_run.returncode == 0, server_run.tail()
    with ExitStack() as stack:
        broker = stack.enter_context(
            running([MOSQUITTO, "-c", str(layout.mosquitto_conf())], port=ports.tls,
                    log=root / "mosquitto.log", env=clean_env())
        )  # fmt: skip
        stack.enter_context(
            running([str(layout.controller_cli()), "controller", "run", "--config",
                     str(layout.controller_config())], port=ports.api,
                    log=root / "controller.log", env=clean_env())
        )  # fmt: skip
        token = _enrollment_token(ports.api, TOKEN_HOST)
        give_enrollment_token(inventory, TOKEN_HOST, token)
        fleet_run = run_playbook(inventory, home)
        assert fleet_run.returncode == 0, fleet_run.tail()
        broker.reload()
        second_run = run_playbook(inventory, home)
        yield Provisioned(layout, ports, server_run, fleet_run, second_run, broker, token)
