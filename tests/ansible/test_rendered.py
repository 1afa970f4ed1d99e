"""The files the roles rendered, read by the project's own loaders and a real Mosquitto."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import load_profile
from agent.config import load_settings as load_agent_settings
from controller.broker.passwords import verify_password
from controller.core.config import load_settings as load_controller_settings
from shared.profiles import parse_profile
from tests.ansible.conftest import Provisioned
from tests.ansible.fleet import (
    ADMIN_TOKEN,
    AGENTS,
    CONTROLLER_PASSWORD,
    LAPTOP_OVERRIDES,
    SERVER,
)
from tests.ansible.harness import CLASSES, read_env_file
from tests.controller.devices import wait_until


def _use_env_file(monkeypatch: pytest.MonkeyPatch, path: Path) -> dict[str, str]:
    """Put an EnvironmentFile's variables into this process, as systemd would for the service."""
    values = read_env_file(path)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.mark.parametrize("host", sorted(AGENTS))
def test_agent_config_loads_with_the_agent_loader_and_its_class_profile(
    provisioned: Provisioned, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = provisioned.layout.agent_config_dir(host)
    secrets = _use_env_file(monkeypatch, config_dir / "agent.env")
    settings = load_agent_settings(config_dir / "agent.yaml")
    assert (settings.device_id, settings.device_class) == (host, AGENTS[host])
    assert settings.mqtt_username == host and settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == secrets["EDGEFLEET_AGENT_MQTT_PASSWORD"]
    assert settings.broker_url == f"mqtts://127.0.0.1:{provisioned.ports.tls}"
    assert settings.tls_ca_file is not None
    assert settings.tls_ca_file.read_bytes() == (provisioned.layout.pki / "ca.crt").read_bytes()
    assert settings.profiles_dir == config_dir / "classes"
    profile = load_profile(settings)
    copied = parse_profile((settings.profiles_dir / f"{AGENTS[host]}.yaml").read_text())
    assert copied == parse_profile((CLASSES / f"{AGENTS[host]}.yaml").read_text())
    expected_overrides = LAPTOP_OVERRIDES if host == "laptop-lab-01" else {}
    assert profile == copied.model_copy(update=expected_overrides)


def test_controller_config_loads_with_the_controller_loader(
    provisioned: Provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = provisioned.layout.controller_config()
    env = _use_env_file(monkeypatch, config.with_name("controller.env"))
    settings = load_controller_settings(config)
    assert settings.broker_url == f"mqtts://127.0.0.1:{provisioned.ports.tls}"
    assert settings.mqtt_password is not None and settings.bootstrap_admin_token is not None
    assert settings.mqtt_password.get_secret_value() == CONTROLLER_PASSWORD
    assert settings.bootstrap_admin_token.get_secret_value() == ADMIN_TOKEN
    assert settings.data_dir == provisioned.layout.host(SERVER) / "var/lib/edgefleet/controller"
    assert settings.api_port == provisioned.ports.api and settings.planner_loop is False
    assert settings.device_classes_dir is not None
    assert sorted(p.name for p in settings.device_classes_dir.glob("*.yaml")) == sorted(
        p.name for p in CLASSES.glob("*.yaml")
    )
    ca = (provisioned.layout.pki / "ca.crt").read_bytes()
    assert Path(env["SSL_CERT_FILE"]).read_bytes() == ca


def _tls_login(provisioned: Provisioned, username: str, password: str) -> ReasonCode | None:
    """CONNACK reason of a TLS login to the provisioned broker (None: no answer in 10 s)."""
    answers: list[ReasonCode] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ansible-test-{username}", protocol=mqtt.MQTTv5
    )
    client.tls_set(ca_certs=str(provisioned.layout.pki / "ca.crt"))
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect("127.0.0.1", provisioned.ports.tls)
    client.loop_start()
    try:
        wait_until(lambda: bool(answers), 10)
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0] if answers else None


def _agent_password(provisioned: Provisioned, host: str) -> str:
    env = read_env_file(provisioned.layout.agent_config_dir(host) / "agent.env")
    return env["EDGEFLEET_AGENT_MQTT_PASSWORD"]


@pytest.mark.parametrize("host", sorted(AGENTS))
def test_mosquitto_with_the_rendered_config_lets_the_enrolled_agent_in_over_tls(
    provisioned: Provisioned, host: str
) -> None:
    password = _agent_password(provisioned, host)
    passwd = provisioned.layout.host(SERVER) / "etc/mosquitto/edgefleet/passwd"
    logins = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    assert verify_password(password, logins[host])
    assert wait_until(
        lambda: (
            (reason := _tls_login(provisioned, host, password)) is not None
            and not reason.is_failure
        ),
        10,
    )


def test_mosquitto_with_the_rendered_config_refuses_a_wrong_password(
    provisioned: Provisioned,
) -> None:
    for username in ("dev-ci-01", "controller"):
        reason = _tls_login(provisioned, username, f"not-the-password-of-{username}")
        assert reason is not None and reason.is_failure, (username, reason)


def test_the_controller_from_the_rendered_config_logs_in_to_the_broker_over_tls(
    provisioned: Provisioned,
) -> None:
    # controller.env gives it the CA as SSL_CERT_FILE; Mosquitto accepts only TLS and logins
    controller_log = (provisioned.layout.root / "controller.log").read_text()
    assert f"connected to 127.0.0.1:{provisioned.ports.tls}" in controller_log
    mosquitto_log = (provisioned.layout.root / "mosquitto.log").read_text()
    assert "as edgefleet-controller (p5, c0, k30, u'controller')" in mosquitto_log
