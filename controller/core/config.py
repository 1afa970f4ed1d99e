"""Controller settings: one pydantic-settings class, from env (``EDGEFLEET_CONTROLLER_*``) and YAML.

Nothing is read at import time; :func:`load_settings` builds the object the
composition root (``edgefleet controller run``, ``create_app``) passes down.
Precedence, highest first: explicit keyword arguments, environment, YAML file,
defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from shared.topics import DEFAULT_PREFIX, TopicError, Topics

ENV_PREFIX = "EDGEFLEET_CONTROLLER_"
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "password", "admin", "test", "xxx"}
)
SECRET_FIELDS = ("mqtt_password", "bootstrap_admin_token")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/edgefleet/controller`` (``~/.local/share/...`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefleet" / "controller"


class ControllerSettings(BaseSettings):
    """Everything the controller process can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    dev_mode: bool = Field(
        False, description="allow empty or placeholder secrets (local development only)"
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="directory for the SQLite file, model files and generated broker files",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://u:p@host/db; "
        "unset: a SQLite file controller.db in data_dir",
    )
    broker_url: str | None = Field(
        None,
        description="mqtt://host:port of an external broker (Mosquitto); "
        "unset: the controller starts an embedded broker",
    )
    embedded_broker_host: str = Field(
        "127.0.0.1", description="address the embedded broker listens on"
    )
    embedded_broker_port: int = Field(
        1883, ge=0, le=65535, description="TCP port of the embedded broker (0: any free port)"
    )
    embedded_broker_allow_anonymous: bool | None = Field(
        None,
        description="let clients without a login use the embedded broker, unrestricted; "
        "unset: only when it listens on loopback (devices otherwise need enrollment)",
    )
    topic_prefix: str = Field(DEFAULT_PREFIX, description="MQTT topic prefix of this fleet")
    mqtt_username: str = Field("controller", description="the controller's MQTT account")
    mqtt_password: SecretStr | None = Field(
        None, description="the controller's MQTT password (required with an external broker)"
    )
    mqtt_client_id: str = Field(
        "edgefleet-controller",
        description="fixed MQTT client id, so the broker keeps the session across restarts",
    )
    mqtt_share_group: str | None = Field(
        None,
        description="MQTT 5 shared-subscription group; set it to split ingest "
        "across controller replicas (each replica needs its own client id)",
    )
    mqtt_session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="how long the broker keeps the session and queued QoS 1 messages",
    )
    mqtt_protocol: Literal["5", "3.1.1"] | None = Field(
        None,
        description="MQTT version of the controller's client; unset: 3.1.1 with the embedded "
        "broker (amqtt speaks only 3.1.1), 5 with an external broker",
    )
    mqtt_keepalive_s: int = Field(30, ge=5, description="MQTT keepalive interval")
    ingest_batch_size: int = Field(
        1000, ge=1, le=100_000, description="most messages written in one transaction"
    )
    ingest_flush_interval_s: float = Field(
        0.2, gt=0, description="longest a received message waits before it is written"
    )
    ingest_queue_size: int = Field(
        200_000, ge=100, description="messages buffered between network and writer threads"
    )
    ingest_ledger_retention_s: int = Field(
        30 * 24 * 3600,
        ge=3600,
        description="how long (device_id, seq) entries are kept for deduplication; keep it "
        "above mqtt_session_expiry_s",
    )
    dead_letter_payload_bytes: int = Field(
        65_536, ge=0, description="how much of a rejected payload is kept in the dead-letter table"
    )
    mosquitto_listener_port: int = Field(
        1883, ge=1, le=65535, description="port in the generated mosquitto.conf"
    )
    mosquitto_listener_bind: str = Field(
        "", description="bind address in the generated mosquitto.conf (empty: all)"
    )
    mosquitto_pid_file: Path | None = Field(
        None,
        description="Mosquitto's pid file; when set, it is sent SIGHUP after credentials change",
    )
    enrollment_token_ttl_s: int = Field(
        24 * 3600, ge=60, description="how long a one-time enrollment token stays valid"
    )
    api_host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    api_port: int = Field(8000, ge=0, le=65535, description="TCP port of the HTTP API")
    public_url: str | None = Field(
        None, description="URL agents use to reach this controller (model downloads)"
    )
    planner_loop: bool = Field(
        True, description="run the planner loop: advance rollouts, draft plans on fleet events"
    )
    planner_lease_ttl_s: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="how long the planner lease lasts unrenewed: with several controller "
        "replicas, another takes over the planner loop and rollouts this long after the "
        "holder died",
    )
    planner_auto_apply: bool = Field(
        False, description="apply the planner loop's drafts without an operator (off: drafts only)"
    )
    planner_interval_s: float = Field(2.0, gt=0, description="seconds between planner loop passes")
    planner_rollout_timeout_s: float = Field(
        600.0, gt=0, description="seconds a wave may take to ack and report healthy, else rollback"
    )
    planner_auto_profile: bool = Field(
        False,
        description="let the planner loop send profiling benches itself (off: only through "
        "POST /api/v1/profiling or `edgefleet plan profile`)",
    )
    planner_profile_interval_s: float = Field(
        600.0, gt=0, description="seconds between the planner loop's profiling rounds"
    )
    judge_model_id: str | None = Field(
        None,
        description="registry model that grades profiling benchmarks 1-10 (a base model grades "
        "by digit probabilities); unset: profiling measures speed and memory only",
    )
    reference_model_id: str | None = Field(
        None,
        description="registry model whose judged answers count as q = 1 in profiling "
        "benchmarks (the strongest model the fleet has); needs judge_model_id",
    )
    profiling_questions: int = Field(
        27, ge=1, description="questions per profiled (model, class) pair (3 per category)"
    )
    profiling_bench_timeout_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="an unanswered profiling bench older than this no longer keeps its device busy",
    )
    bootstrap_admin_token: SecretStr | None = Field(
        None, description="admin API token to create on first start (unset: generate and print)"
    )
    device_classes_dir: Path | None = Field(
        None,
        description="directory of device-class profiles (*.yaml, e.g. firmware-config/classes) "
        "loaded into the database at start",
    )
    database_echo: bool = Field(False, description="log every SQL statement (debugging)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords, then environment, then the YAML file (when one is configured)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        try:
            Topics(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("broker_url")
    @classmethod
    def _valid_broker_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://", "tcp://")):
            raise ValueError("broker_url must look like mqtt://host:port or mqtts://host:port")
        return value

    @model_validator(mode="after")
    def _reference_needs_judge(self) -> ControllerSettings:
        if self.reference_model_id and not self.judge_model_id:
            raise ValueError("reference_model_id needs judge_model_id to score its answers")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ControllerSettings:
        if self.dev_mode:
            return self
        for name in SECRET_FIELDS:
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and secret.get_secret_value().strip().lower() in (
                PLACEHOLDER_SECRETS
            ):
                raise ValueError(
                    f"{name} is empty or a placeholder; set a real secret or enable dev_mode"
                )
        if self.broker_url is not None and self.mqtt_password is None:
            raise ValueError(
                "mqtt_password is required with an external broker_url (or enable dev_mode)"
            )
        return self

    @property
    def db_url(self) -> str:
        """The database URL in effect (the SQLite file in data_dir by default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'controller.db'}"

    @property
    def effective_mqtt_protocol(self) -> str:
        """The MQTT version in effect ("5" or "3.1.1")."""
        if self.mqtt_protocol is not None:
            return self.mqtt_protocol
        return "5" if self.broker_url else "3.1.1"

    def model_file_url(self, model_id: str) -> str:
        """The registry's download URL of a model as agents reach it (sent in assign commands)."""
        base = self.public_url or f"http://{self.api_host}:{self.api_port}"
        return f"{base.rstrip('/')}/api/v1/models/{model_id}/file"

    @property
    def topics(self) -> Topics:
        """The topic builder for this fleet's prefix."""
        return Topics(self.topic_prefix)

    @property
    def models_dir(self) -> Path:
        """Where registry model files are stored."""
        return self.data_dir / "models"

    @property
    def broker_dir(self) -> Path:
        """Where generated broker files (Mosquitto config, passwords, ACLs) go."""
        return self.data_dir / "broker"


def load_settings(
    config_file: str | os.PathLike[str] | None = None, **overrides: Any
) -> ControllerSettings:
    """Build settings from an optional YAML file, the environment and explicit overrides."""
    if config_file is None:
        return ControllerSettings(**overrides)
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"controller config file {path} does not exist")
    from_yaml = type(
        "ControllerSettings",
        (ControllerSettings,),
        {
            "model_config": SettingsConfigDict(
                **{**ControllerSettings.model_config, "yaml_file": path}
            ),
            "__module__": __name__,
        },
    )
    settings: ControllerSettings = from_yaml(**overrides)
    return settings
