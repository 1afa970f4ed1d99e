"""Controller settings: one pydantic-settings class, from env (``EDGEFLEET_CONTROLLER_*``) and YAML.

Nothing is read at import time; :func:`load_settings` builds the object the
composition root (``edgefleet controller run``, ``create_app``) passes down.
Precedence, highest first, as for the agent (``shared.settings``): keyword
arguments, the environment, the YAML file, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from controller.gateway.settings import GatewaySettings
from shared.messages import MAX_PAYLOAD_BYTES
from shared.settings import (
    LayeredSettings,
    check_broker_url,
    read_settings_file,
    refuse_placeholders,
)
from shared.strategies import REFINE_1, StrategyName
from shared.topics import DEFAULT_PREFIX, TopicError, Topics

ENV_PREFIX = "EDGEFLEET_CONTROLLER_"
SECRET_FIELDS = ("mqtt_password", "bootstrap_admin_token")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/edgefleet/controller`` (``~/.local/share/...`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefleet" / "controller"


class ControllerSettings(LayeredSettings):
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
        "unset: the controller starts a local broker (see local_broker)",
    )
    local_broker: Literal["auto", "mosquitto", "embedded"] = Field(
        "auto",
        description="the broker started when broker_url is unset: mosquitto (a supervised "
        "child with persistence in data_dir, nothing acknowledged is lost if the controller "
        "dies), embedded (amqtt in-process: queued messages die with the controller), or "
        "auto (mosquitto when installed, else embedded with a warning)",
    )
    mosquitto_binary: str = Field(
        "mosquitto", description="the Mosquitto executable (a name on PATH or in /usr/sbin)"
    )
    embedded_broker_host: str = Field(
        "127.0.0.1", description="address the local broker's device listener binds to"
    )
    embedded_broker_port: int = Field(
        1883, ge=0, le=65535, description="TCP port of the local broker's device listener (0: any)"
    )
    embedded_broker_allow_anonymous: bool = Field(
        False,
        description="let clients without a login use the embedded (amqtt) broker, unrestricted "
        "(local experiments only: any local process could then control the fleet)",
    )
    mqtt_max_packet_bytes: int = Field(
        MAX_PAYLOAD_BYTES + 8192,
        ge=4096,
        description="largest MQTT packet a broker the controller configures accepts "
        "(Mosquitto's max_packet_size; the embedded broker has no such limit)",
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
        "broker (amqtt speaks only 3.1.1), else 5",
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
    ingest_silence_s: float = Field(
        120.0,
        gt=0,
        description="/healthz degrades when devices are online but ingest has received nothing "
        "for this long (keep it above the agents' heartbeat interval)",
    )
    ingest_max_future_skew_s: float = Field(
        3600.0,
        gt=0,
        description="a message whose sent_at is further ahead of the controller's clock is a "
        "dead letter (clock_skew): it would pin the device's timestamps",
    )
    dead_letter_payload_bytes: int = Field(
        4096, ge=0, description="how much of a rejected payload is kept in the dead-letter table"
    )
    dead_letter_max_rows: int = Field(
        10_000, ge=1, description="dead letters kept; the oldest go first (counters stay exact)"
    )
    dead_letter_max_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="payload bytes kept in dead letters, at most"
    )
    mosquitto_listener_port: int = Field(
        1883, ge=1, le=65535, description="port in the generated mosquitto.conf"
    )
    mosquitto_listener_bind: str = Field(
        "", description="bind address in the generated mosquitto.conf (empty: all)"
    )
    mosquitto_controller_port: int = Field(
        1884,
        ge=1,
        le=65535,
        description="port of the controller-only loopback listener in the generated "
        "mosquitto.conf (the controller's login works only there)",
    )
    mosquitto_pid_file: Path | None = Field(
        None,
        description="Mosquitto's pid file; when set, it is sent SIGHUP after credentials change",
    )
    enrollment_token_ttl_s: int = Field(
        24 * 3600, ge=60, description="how long a one-time enrollment token stays valid"
    )
    http_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body of any API route but the upload (413)"
    )
    http_max_upload_bytes: int = Field(
        32 * 1024**3,
        ge=1024,
        description="largest GGUF file POST /api/v1/models/upload takes (413)",
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
        "by digit probabilities), and, in judge steps the planner loop sends to the device "
        "best able to hold it, every judged answer a device could not grade itself; unset: "
        "profiling measures speed and memory only",
    )
    reference_model_id: str | None = Field(
        None,
        description="registry model whose judged answers count as q = 1 in profiling "
        "benchmarks (the strongest model the fleet has); needs judge_model_id",
    )
    profiling_suite_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="suite profiling benches run (uploaded or built in, pinned by sha256 when "
        "sent); unset: the built-in nine-category set",
    )
    profiling_questions: int = Field(
        27, ge=1, description="questions per profiled (model, class) pair (3 per category)"
    )
    profiling_strategies: list[StrategyName] = Field(
        default_factory=lambda: [REFINE_1.name],
        max_length=8,
        description="test-time strategies every profiling bench measures beside direct, "
        "e.g. refine:1, verify-refine, vote:5 (each adds its device time per question)",
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
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="the chat gateway's limits and timeouts"
    )

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
        return None if value is None else check_broker_url(value)

    @model_validator(mode="after")
    def _reference_needs_judge(self) -> ControllerSettings:
        if self.reference_model_id and not self.judge_model_id:
            raise ValueError("reference_model_id needs judge_model_id to score its answers")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ControllerSettings:
        if self.dev_mode:
            return self
        refuse_placeholders(self, SECRET_FIELDS)
        if self.gateway.device_token is not None:
            refuse_placeholders(self.gateway, ("device_token",))
        if self.broker_url is not None and self.mqtt_password is None:
            raise ValueError(
                "mqtt_password is required with an external broker_url (or enable dev_mode)"
            )
        return self

    @property
    def db_url(self) -> str:
        """The database URL in effect (the SQLite file in data_dir by default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'controller.db'}"

    def model_file_url(self, model_id: str) -> str:
        """The registry's download URL of a model as agents reach it (sent in assign commands)."""
        base = self.public_url or f"http://{self.api_host}:{self.api_port}"
        return f"{base.rstrip('/')}/api/v1/models/{model_id}/file"

    def suite_file_url(self, suite_id: str) -> str:
        """Where agents fetch an uploaded suite (sent in bench commands that name it)."""
        base = self.public_url or f"http://{self.api_host}:{self.api_port}"
        return f"{base.rstrip('/')}/api/v1/suites/{suite_id}/file"

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
    """The YAML file (if any) under the environment under ``overrides``."""
    if config_file is None:
        return ControllerSettings(**overrides)
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"controller config file {path} does not exist")
    return ControllerSettings.layered(read_settings_file(path), **overrides)
