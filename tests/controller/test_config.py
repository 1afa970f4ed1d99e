"""Controller settings: YAML, environment precedence, typos and placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.core.config import ControllerSettings, load_settings


def test_yaml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text("topic_prefix: fleet/a\napi_port: 9000\ndata_dir: /srv/edgefleet\n")
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_API_PORT", "9100")
    settings = load_settings(config)
    assert settings.topic_prefix == "fleet/a" and settings.api_port == 9100
    assert settings.db_url == "sqlite:////srv/edgefleet/controller.db"
    assert isinstance(settings, ControllerSettings)
    assert load_settings(config, api_port=9200).api_port == 9200


def test_a_typo_in_the_yaml_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "controller.yaml"
    config.write_text("brokr_url: mqtt://x:1883\n")
    with pytest.raises(ValidationError, match="brokr_url"):
        load_settings(config)


@pytest.mark.parametrize("secret", ["", "changeme", "  Password "])
def test_placeholder_secrets_are_refused_unless_in_dev_mode(secret: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        ControllerSettings(mqtt_password=secret)
    assert ControllerSettings(mqtt_password=secret, dev_mode=True).dev_mode


def test_external_broker_needs_a_password() -> None:
    with pytest.raises(ValidationError, match="mqtt_password is required"):
        ControllerSettings(broker_url="mqtt://broker:1883")
    settings = ControllerSettings(broker_url="mqtt://broker:1883", mqtt_password="k3y-x9-long")
    assert "k3y" not in repr(settings)


def test_invalid_prefix_and_broker_url_are_refused() -> None:
    with pytest.raises(ValidationError, match="topic prefix"):
        ControllerSettings(topic_prefix="bad prefix/#")
    with pytest.raises(ValidationError, match="broker_url"):
        ControllerSettings(broker_url="http://x", mqtt_password="k3y-x9-long")


def test_fleet_judge_and_reference_come_from_the_environment_and_pair_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from controller.plans.profiler import profiling_settings

    monkeypatch.setenv("EDGEFLEET_CONTROLLER_JUDGE_MODEL_ID", "gemma3-270m")
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_REFERENCE_MODEL_ID", "qwen-1.5b")
    monkeypatch.setenv("EDGEFLEET_CONTROLLER_PROFILING_QUESTIONS", "9")
    settings = ControllerSettings()
    assert settings.planner_auto_profile is False  # profiling runs only when asked
    profiling = profiling_settings(settings)
    assert (profiling.judge_model_id, profiling.reference_model_id) == ("gemma3-270m", "qwen-1.5b")
    assert profiling.questions_per_pair == 9
    monkeypatch.delenv("EDGEFLEET_CONTROLLER_JUDGE_MODEL_ID")
    with pytest.raises(ValidationError, match="reference_model_id needs judge_model_id"):
        ControllerSettings()
