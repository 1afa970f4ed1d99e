"""One rule set for both sides' settings: precedence, placeholder secrets, the broker URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from agent.config import ConfigError
from agent.config import load_settings as load_agent
from controller.core.config import load_settings as load_controller
from shared.settings import PLACEHOLDER_SECRETS, BrokerAddress, check_broker_url, describe

SIDES = {
    "agent": (load_agent, "EDGEFLEET_AGENT_", {"device_id": "pi-1"}, (ConfigError,)),
    "controller": (load_controller, "EDGEFLEET_CONTROLLER_", {}, (ValidationError,)),
}


def _file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize("side", sorted(SIDES))
def test_keywords_beat_the_environment_which_beats_the_file(
    side: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load, prefix, required, _ = SIDES[side]
    path = _file(tmp_path, {**required, "topic_prefix": "from/file", "dev_mode": False})
    assert load(path).topic_prefix == "from/file"
    monkeypatch.setenv(f"{prefix}TOPIC_PREFIX", "from/env")
    assert load(path).topic_prefix == "from/env"
    assert load(path, topic_prefix="from/flag").topic_prefix == "from/flag"
    assert load(path, topic_prefix="from/flag").dev_mode is False  # the file still counts


@pytest.mark.parametrize("side", sorted(SIDES))
@pytest.mark.parametrize("secret", sorted(PLACEHOLDER_SECRETS | {" ChangeMe "}))
def test_both_sides_refuse_the_same_placeholder_secrets(
    side: str, secret: str, tmp_path: Path
) -> None:
    load, _, required, errors = SIDES[side]
    path = _file(tmp_path, {**required, "mqtt_password": secret})
    with pytest.raises(errors, match="placeholder"):
        load(path)
    assert load(path, dev_mode=True).dev_mode


@pytest.mark.parametrize("side", sorted(SIDES))
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://broker:1883", "mqtt://host:port"),
        ("mqtt://", "mqtt://host:port"),
        ("mqtt://dev:s3cret@broker:1883", "must not contain credentials"),
        ("mqtt://broker:notaport", "bad port"),
    ],
)
def test_both_sides_refuse_the_same_broker_urls(
    side: str, url: str, message: str, tmp_path: Path
) -> None:
    load, _, required, errors = SIDES[side]
    path = _file(tmp_path, {**required, "broker_url": url, "mqtt_password": "a-real-secret"})
    with pytest.raises(errors, match=message) as raised:
        load(path)
    if isinstance(raised.value, ValidationError):
        assert "s3cret" not in describe(raised.value)  # what the controller's CLI prints
    else:
        assert "s3cret" not in str(raised.value)


def test_a_broker_url_names_host_port_and_tls() -> None:
    assert BrokerAddress.from_url(check_broker_url("mqtts://b.lan")) == BrokerAddress(
        "b.lan", 8883, True
    )
    assert BrokerAddress.from_url("mqtt://10.0.0.2:1884") == BrokerAddress("10.0.0.2", 1884, False)
