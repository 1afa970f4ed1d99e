"""Agent configuration: a YAML file plus ``EDGEFLEET_AGENT_`` environment variables.

Precedence, highest first, as for the controller (``shared.settings``):
keyword arguments, the environment, the YAML file, field defaults.
The device-class profile is read from ``firmware-config/classes/<name>.yaml``
and ``profile_overrides`` are applied on top, then validated again, so a local
override can never produce a profile the shared schema would refuse.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.profiles import DeviceProfile, ProfileError, parse_profile
from shared.settings import (
    BrokerAddress,
    LayeredSettings,
    SettingsFileError,
    check_broker_url,
    describe,
    read_settings_file,
    refuse_placeholders,
)
from shared.topics import DEFAULT_PREFIX, Topics, is_valid_device_id

logger = logging.getLogger(__name__)
REPO_PROFILES_DIR = Path(__file__).resolve().parents[1] / "firmware-config" / "classes"
MqttProtocol = Literal["auto", "5", "3.1.1"]
PROTOCOL_ALIASES = {"5": "5", "5.0": "5", "311": "3.1.1", "3.1.1": "3.1.1", "auto": "auto"}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


class AgentSettings(LayeredSettings):
    """Everything one agent process needs to know; built once by the composition root."""

    model_config = SettingsConfigDict(
        env_prefix="EDGEFLEET_AGENT_", extra="forbid", env_nested_delimiter="__"
    )

    device_id: str = Field(description="this device's id: a lowercase slug, unique in the fleet")
    device_class: str = Field("dev-x86-1core", description="profile name in profiles_dir")
    profiles_dir: Path = Field(REPO_PROFILES_DIR, description="where device-class YAMLs live")
    profile_overrides: dict[str, Any] = Field(
        default_factory=dict, description="profile fields overridden on this device only"
    )
    broker_url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://")
    mqtt_username: str | None = Field(None, description="broker user name (usually the device id)")
    mqtt_password: SecretStr | None = Field(None, description="broker password")
    tls_ca_file: Path | None = Field(None, description="CA bundle for mqtts:// (default: system)")
    tls_cert_file: Path | None = Field(None, description="client certificate for mqtts://")
    tls_key_file: Path | None = Field(None, description="client key for mqtts://")
    topic_prefix: str = Field(DEFAULT_PREFIX, description="MQTT topic prefix of the fleet")
    controller_url: str | None = Field(None, description="controller base URL (model registry)")
    controller_token: SecretStr | None = Field(
        None, description="bearer token for model downloads, if the registry requires one"
    )
    data_dir: Path = Field(Path("/var/lib/edgefleet"), description="outbox, state and models")
    disk_budget_mb: int | None = Field(None, gt=0, description="model store size; default: profile")
    initial_model: Path | None = Field(
        None, description="GGUF to serve at start when no model was assigned yet"
    )
    heartbeat_interval_s: float = Field(30.0, gt=0, description="seconds between heartbeats")
    metrics_interval_s: float = Field(60.0, gt=0, description="seconds between metrics reports")
    outbox_max_messages: int = Field(
        20_000, ge=10, description="outbox bound; heartbeats are dropped first, bench never"
    )
    outbox_max_unconfirmed: int = Field(
        5_000,
        ge=0,
        description="published messages kept until the controller confirms storing them; "
        "beyond it the oldest are forgotten (the broker acknowledged them)",
    )
    confirm_timeout_s: float = Field(
        30.0,
        gt=0,
        description="publish a message again when the controller has not confirmed it this "
        "long after the broker did, but has confirmed a later one",
    )
    mqtt_protocol: MqttProtocol = Field(
        "auto",
        description="MQTT version: 5, 3.1.1, or auto (5, falling back to 3.1.1 if refused)",
    )
    keepalive_s: int = Field(30, ge=5, description="MQTT keepalive")
    session_expiry_s: int = Field(
        86_400, ge=0, description="broker keeps commands for an absent device this long (0: never)"
    )
    reconnect_min_s: float = Field(0.5, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(60.0, gt=0, description="longest reconnect delay")
    chat_enabled: bool = Field(True, description="serve the local OpenAI-compatible chat API")
    chat_host: str = Field("127.0.0.1", description="chat API bind address (loopback by default)")
    chat_port: int = Field(8080, ge=0, le=65535, description="chat API port (0: pick a free one)")
    chat_token: SecretStr | None = Field(None, description="bearer token for the chat API")
    chat_public_url: str | None = Field(
        None,
        max_length=512,
        pattern=r"^https?://[^/@?#\s]+/?$",
        description="the chat API's base URL as the controller's gateway reaches it, "
        "announced in the hello (default: http://chat_host:chat_port; set it when binding "
        "0.0.0.0 or behind a port mapping)",
    )
    chat_queue_size: int = Field(4, ge=1, description="waiting chat requests before 429")
    chat_mqtt_concurrent: int = Field(
        4, ge=0, le=64, description="the gateway's chat requests over MQTT at once (0: none)"
    )
    chat_max_tokens: int = Field(256, ge=1, description="default max_tokens of a chat request")
    gpio_mock: bool | None = Field(
        None, description="force gpiozero's MockFactory (default: mock when not on a Pi)"
    )
    dev_mode: bool = Field(False, description="accept placeholder secrets (never in production)")

    @field_validator("device_id")
    @classmethod
    def _check_device_id(cls, value: str) -> str:
        if not is_valid_device_id(value):
            raise ValueError("must be a lowercase slug: a-z, 0-9, _ and -, at most 63 characters")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        return check_broker_url(value)

    @field_validator("mqtt_protocol", mode="before")
    @classmethod
    def _normalise_protocol(cls, value: object) -> object:
        # YAML reads `5` as an int and `3.1.1` only as a string; accept the usual spellings
        text = str(value).strip().lower().removeprefix("mqtt").removeprefix("v")
        return PROTOCOL_ALIASES.get(text, value)

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        Topics(value)
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> AgentSettings:
        if self.dev_mode:
            return self
        refuse_placeholders(self, ("mqtt_password", "chat_token", "controller_token"))
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.chat_enabled and self.chat_token is None and not _is_loopback(self.chat_host):
            logger.warning(
                "chat API on %s without chat_token: anyone on the network can use it",
                self.chat_host,
            )
        return self

    def download_headers(self) -> dict[str, str] | None:
        """Auth for model downloads: the API token if set, else the device's MQTT login (Basic)."""
        if self.controller_token is not None:
            return {"Authorization": f"Bearer {self.controller_token.get_secret_value()}"}
        if self.mqtt_username and self.mqtt_password is not None:
            login = f"{self.mqtt_username}:{self.mqtt_password.get_secret_value()}"
            return {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()}
        return None

    @property
    def broker_tls(self) -> bool:
        """Whether the broker URL asks for TLS."""
        return BrokerAddress.from_url(self.broker_url).tls

    @property
    def broker_host(self) -> str:
        """Host part of the broker URL."""
        return BrokerAddress.from_url(self.broker_url).host

    @property
    def broker_port(self) -> int:
        """Port of the broker URL, with the scheme's default."""
        return BrokerAddress.from_url(self.broker_url).port

    @property
    def models_dir(self) -> Path:
        """The model store's directory."""
        return self.data_dir / "models"

    @property
    def db_path(self) -> Path:
        """SQLite file of the outbox, the seq counter and handled commands."""
        return self.data_dir / "agent.db"


def load_settings(path: Path | None = None, **overrides: Any) -> AgentSettings:
    """The YAML file (if any) under the environment under ``overrides``."""
    source = str(path) if path else "<settings>"
    try:
        data = read_settings_file(path) if path is not None else {}
    except SettingsFileError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return AgentSettings.layered(data, **overrides)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None


def load_profile(settings: AgentSettings) -> DeviceProfile:
    """The device-class profile with this device's overrides applied and re-validated."""
    path = settings.profiles_dir / f"{settings.device_class}.yaml"
    try:
        text = path.read_text()
    except OSError:
        raise ConfigError(f"no profile {settings.device_class!r}: {path} is missing") from None
    try:
        base = parse_profile(text, source=str(path))
        merged = {**base.model_dump(), **settings.profile_overrides}
        if settings.disk_budget_mb is not None:
            merged["disk_budget_mb"] = settings.disk_budget_mb
        return parse_profile(yaml.safe_dump(merged), source=f"{path} + profile_overrides")
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
