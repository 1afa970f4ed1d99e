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
from controller.core.config import ControllerSettings
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
    assert settings.broker_url == f"mqtts://127.0.0.1:{provisioned.ports.controller_tls}"
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


def _login(
    provisioned: Provisioned,
    username: str,
    password: str,
    *,
    port: int | None = None,
    client_id: str | None = None,
) -> ReasonCode | None:
    """CONNACK reason of a login to the provisioned broker (None: no answer in 10 s).

    TLS on every port but the plain loopback one; the devices' TLS port unless told.
    """
    port = provisioned.ports.tls if port is None else port
    answers: list[ReasonCode] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"ansible-test-{username}",
        protocol=mqtt.MQTTv5,
    )
    if port != provisioned.ports.local:
        client.tls_set(ca_certs=str(provisioned.layout.pki / "ca.crt"))
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect("127.0.0.1", port)
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
            (reason := _login(provisioned, host, password)) is not None and not reason.is_failure
        ),
        10,
    )


def test_mosquitto_with_the_rendered_config_refuses_a_wrong_password(
    provisioned: Provisioned,
) -> None:
    for username in ("dev-ci-01", "controller"):
        reason = _login(provisioned, username, f"not-the-password-of-{username}")
        assert reason is not None and reason.is_failure, (username, reason)


def test_the_controller_from_the_rendered_config_logs_in_to_its_own_tls_listener(
    provisioned: Provisioned,
) -> None:
    # controller.env gives it the CA as SSL_CERT_FILE; Mosquitto accepts only TLS and logins
    controller_log = (provisioned.layout.root / "controller.log").read_text()
    assert f"connected to 127.0.0.1:{provisioned.ports.controller_tls}" in controller_log
    mosquitto_log = (provisioned.layout.root / "mosquitto.log").read_text()
    assert "as edgefleet-controller (p5, c0, k30, u'controller')" in mosquitto_log


def _listeners(conf: str) -> dict[str, dict[str, str]]:
    """mosquitto.conf's listener blocks by port, each its options (the last value of each)."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in conf.splitlines():
        key, _, value = line.partition(" ")
        if key == "listener":
            current = blocks.setdefault(value.split()[0], {})
        elif current is not None and key and not key.startswith("#"):
            current[key] = value
    return blocks


def test_the_rendered_config_binds_device_client_ids_and_gives_the_controller_its_own_listeners(
    provisioned: Provisioned,
) -> None:
    conf = provisioned.layout.mosquitto_conf().read_text()
    assert "per_listener_settings true" in conf.splitlines()
    # the same packet bound as the broker the controller configures itself
    packet_bound = ControllerSettings.model_fields["mqtt_max_packet_bytes"].default
    assert f"max_packet_size {packet_bound}" in conf.splitlines()
    files = provisioned.layout.host(SERVER) / "etc/mosquitto/edgefleet"
    ports = provisioned.ports
    listeners = _listeners(conf)
    assert sorted(listeners) == sorted(
        str(p) for p in (ports.tls, ports.controller_tls, ports.local)
    )
    device = listeners[str(ports.tls)]
    assert device["use_username_as_clientid"] == "true"
    assert (device["password_file"], device["acl_file"]) == (f"{files}/passwd", f"{files}/acl")
    for port in (ports.controller_tls, ports.local):
        controller = listeners[str(port)]
        assert "use_username_as_clientid" not in controller
        assert controller["allow_anonymous"] == "false"
        assert (controller["password_file"], controller["acl_file"]) == (
            f"{files}/controller.passwd",
            f"{files}/controller.acl",
        )
    assert "certfile" in listeners[str(ports.controller_tls)]
    assert "certfile" not in listeners[str(ports.local)]
    exported = provisioned.layout.host(SERVER) / "var/lib/edgefleet/controller/broker"
    for name in ("passwd", "acl", "controller.passwd", "controller.acl"):
        assert (files / name).read_bytes() == (exported / name).read_bytes(), name


def test_each_listener_knows_only_its_own_logins(provisioned: Provisioned) -> None:
    ports = provisioned.ports
    device, device_password = "dev-ci-01", _agent_password(provisioned, "dev-ci-01")
    logins = {
        (port, user): _login(provisioned, user, password, port=port)
        for port in (ports.tls, ports.controller_tls, ports.local)
        for user, password in (("controller", CONTROLLER_PASSWORD), (device, device_password))
    }
    accepted = {
        key for key, reason in logins.items() if reason is not None and not reason.is_failure
    }
    assert accepted == {
        (ports.tls, device),
        (ports.controller_tls, "controller"),
        (ports.local, "controller"),
    }, logins


def test_a_device_using_the_controllers_client_id_gets_its_login_instead_and_kicks_nothing(
    provisioned: Provisioned,
) -> None:
    log = provisioned.layout.root / "mosquitto.log"
    seen = len(log.read_text())
    device = "dev-ci-01"
    reason = _login(
        provisioned, device, _agent_password(provisioned, device), client_id="edgefleet-controller"
    )
    assert reason is not None and not reason.is_failure, reason
    connected = f" as {device} ("
    assert wait_until(lambda: connected in log.read_text()[seen:], 10), log.read_text()[seen:]
    assert "edgefleet-controller already connected" not in log.read_text()[seen:]
