"""Agent configuration: YAML plus environment, profile overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import AgentSettings, ConfigError, load_profile, load_settings

EXAMPLE = Path(__file__).parents[2] / "firmware-config" / "agent.example.yaml"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_values_load_and_the_environment_overrides_them(tmp_path, monkeypatch) -> None:
    path = _write(
        tmp_path,
        {"device_id": "pi-7", "broker_url": "mqtts://broker.lan:8883", "heartbeat_interval_s": 12},
    )
    monkeypatch.setenv("EDGEFLEET_AGENT_HEARTBEAT_INTERVAL_S", "3")
    settings = load_settings(path)
    assert settings.device_id == "pi-7"
    assert settings.heartbeat_interval_s == 3
    assert settings.broker_tls and settings.broker_port == 8883
    assert settings.broker_host == "broker.lan"


def test_a_typo_in_the_file_is_an_error_naming_the_key_and_file(tmp_path) -> None:
    path = _write(tmp_path, {"device_id": "pi-7", "hartbeat_interval_s": 5})
    with pytest.raises(ConfigError, match=r"agent\.yaml: hartbeat_interval_s: Extra inputs"):
        load_settings(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("device_id", "Pi 7", "lowercase slug"),
        ("broker_url", "http://x", "mqtt://host:port"),
        ("broker_url", "mqtt://dev:s3cret@broker:1883", "must not contain credentials"),
        ("mqtt_password", "changeme", "placeholder"),
        ("topic_prefix", "bad prefix", "invalid topic prefix"),
        ("chat_public_url", "http://user:pw@10.0.0.7:8080", "chat_public_url"),
        ("chat_public_url", "ftp://10.0.0.7", "chat_public_url"),
        ("chat_public_url", "http://10.0.0.7:8080/v1", "chat_public_url"),
    ],
)
def test_bad_values_are_refused_with_a_reason(tmp_path, field, value, message) -> None:
    data = {"device_id": "pi-7", field: value}
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, data))


def test_placeholder_secrets_are_accepted_in_dev_mode_only(tmp_path) -> None:
    settings = load_settings(None, device_id="pi-7", chat_token="changeme", dev_mode=True)
    assert settings.chat_token is not None
    assert "changeme" not in repr(settings)  # secrets never printed


def test_profile_comes_from_firmware_config_with_local_overrides(tmp_path) -> None:
    settings = AgentSettings(
        device_id="pi-7",
        device_class="pi4-4gb",
        profile_overrides={"threads": 3},
        disk_budget_mb=900,
    )
    profile = load_profile(settings)
    assert profile.name == "pi4-4gb" and profile.threads == 3
    assert profile.disk_budget_mb == 900 and profile.gpio.status_led == 17


def test_bad_profile_overrides_and_unknown_classes_are_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="threads"):
        load_profile(AgentSettings(device_id="a", profile_overrides={"threads": 0}))
    with pytest.raises(ConfigError, match="memory_budgt_mb"):
        load_profile(AgentSettings(device_id="a", profile_overrides={"memory_budgt_mb": 1}))
    with pytest.raises(ConfigError, match="no profile 'toaster'"):
        load_profile(AgentSettings(device_id="a", device_class="toaster"))


def test_missing_or_malformed_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(bad)


def test_the_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert load_profile(settings).name == settings.device_class


def test_chat_api_open_to_the_network_without_a_token_is_warned(caplog) -> None:
    load_settings(None, device_id="pi-7", chat_host="0.0.0.0")
    assert "without chat_token" in caplog.text
    caplog.clear()
    load_settings(None, device_id="pi-7", chat_host="::1")
    assert "without chat_token" not in caplog.text
