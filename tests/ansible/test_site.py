"""ansible/site.yml really run: idempotence, enrollment through the API, secrets, the units."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ansible.conftest import Provisioned
from tests.ansible.fleet import ADMIN_TOKEN, AGENTS, CONTROLLER_PASSWORD, SERVER
from tests.ansible.harness import CLASSES, ROOT, read_env_file

FIRSTBOOT_UNIT = ROOT / "firmware-config" / "firstboot" / "edgefleet-agent.service"


def test_a_second_run_of_site_yml_changes_nothing(provisioned: Provisioned) -> None:
    first, second = provisioned.fleet_run.recap, provisioned.second_run.recap
    assert set(second) == {SERVER, *AGENTS}
    assert all(first[host]["changed"] > 0 for host in AGENTS)  # the agents were installed then
    changes = {host: counts["changed"] for host, counts in second.items()}
    failures = {host: counts["failed"] for host, counts in second.items()}
    assert changes == dict.fromkeys(second, 0), provisioned.second_run.tail()
    assert failures == dict.fromkeys(second, 0)


def test_agents_enrolled_through_the_controller_api_with_their_class(
    provisioned: Provisioned,
) -> None:
    api = f"http://127.0.0.1:{provisioned.ports.api}/api/v1"
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    devices = httpx.get(f"{api}/devices", headers=auth, timeout=10).json()["items"]
    assert {d["id"]: d["device_class"] for d in devices} == AGENTS
    again = httpx.post(
        f"{api}/enroll", json={"device_id": "dev-ci-01"}, timeout=10,
        headers={"Authorization": f"Bearer {provisioned.enrollment_token}"},
    )  # fmt: skip
    assert again.status_code == 403  # the one-time token was spent by the role


def _secrets(provisioned: Provisioned) -> list[str]:
    agent_envs = [
        read_env_file(provisioned.layout.agent_config_dir(host) / "agent.env") for host in AGENTS
    ]
    passwords = [env["EDGEFLEET_AGENT_MQTT_PASSWORD"] for env in agent_envs]
    return [*passwords, ADMIN_TOKEN, CONTROLLER_PASSWORD, provisioned.enrollment_token]


def test_secrets_stay_out_of_the_output_and_in_files_only_their_group_reads(
    provisioned: Provisioned,
) -> None:
    runs = (provisioned.server_run, provisioned.fleet_run, provisioned.second_run)
    for secret in _secrets(provisioned):
        assert all(secret not in run.output for run in runs)
    server = provisioned.layout.host(SERVER)
    private = [
        server / "etc/edgefleet/controller.env",
        server / "etc/mosquitto/edgefleet/passwd",
        server / "etc/mosquitto/edgefleet/controller.passwd",
        server / "etc/mosquitto/edgefleet/server.key",
        *(provisioned.layout.agent_config_dir(host) / "agent.env" for host in AGENTS),
    ]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in private} == {
        path.name: 0o640 for path in private
    }


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("host", sorted(AGENTS))
def test_agent_unit_keeps_the_firstboot_unit_and_caps_cpu_at_the_class_threads(
    provisioned: Provisioned, host: str
) -> None:
    root = provisioned.layout.host(host)
    rendered = _unit(root / "etc/systemd/system/edgefleet-agent.service")
    firstboot = _unit(FIRSTBOOT_UNIT)
    for section in ("Unit", "Service", "Install"):
        missing = set(firstboot[section]) - set(rendered[section])
        # no extra groups on a PC (no gpio), and StateDirectory only for /var/lib/edgefleet
        assert missing <= {"SupplementaryGroups", "StateDirectory"}, (section, missing)
    service = rendered["Service"]
    config, edgefleet = root / "etc/edgefleet/agent.yaml", root / "opt/edgefleet/venv/bin/edgefleet"
    assert service["ExecStart"] == f"{edgefleet} agent run --config {config}"
    assert service["EnvironmentFile"] == f"-{config.with_name('agent.env')}"
    profile = yaml.safe_load((CLASSES / f"{AGENTS[host]}.yaml").read_text())
    assert service["CPUQuota"] == f"{profile['threads'] * 100}%"
    assert service["ReadWritePaths"] == str(root / "var/lib/edgefleet")
