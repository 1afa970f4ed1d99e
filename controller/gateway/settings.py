"""The gateway's settings, nested in the controller's as ``gateway`` (YAML, or JSON in the env)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from controller.gateway.escalation import EscalationSettings


class GatewaySettings(BaseModel):
    """Limits and timeouts of the chat gateway (``EDGEFLEET_CONTROLLER_GATEWAY='{...}'``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: float = Field(
        60.0, gt=0, le=60_000, description="sustained chat requests per minute per client key"
    )
    burst: int = Field(10, ge=1, le=10_000, description="requests a key may send at once")
    max_inflight_per_device: int = Field(
        4,
        ge=1,
        le=1024,
        description="requests the gateway has open on one device; when every device serving "
        "the model is at it, the gateway answers 429 with Retry-After",
    )
    sticky_conversations: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="conversations whose last device the gateway remembers (the most recent; "
        "~250 bytes each) to send their next turn there, where the prefix is cached; 0: off",
    )
    connect_timeout_s: float = Field(
        3.0, gt=0, le=60, description="to open a connection to a device's chat API"
    )
    first_token_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="a device that sends nothing for this long has failed the request",
    )
    transport: Literal["auto", "http", "mqtt"] = Field(
        "auto",
        description="how the gateway reaches devices: auto (HTTP where the device's chat URL "
        "answers, else the MQTT link the device opened), http only, or mqtt only",
    )
    http_retry_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="auto: after a device's chat URL refused a connection, the gateway uses "
        "MQTT for that device this long before it tries HTTP again",
    )
    mqtt_max_inflight_per_device: int = Field(
        4,
        ge=1,
        le=64,
        description="chat requests the gateway has open over MQTT on one device (the agent "
        "bounds them too, chat_mqtt_concurrent); more: that device is busy",
    )
    device_token: SecretStr | None = Field(
        None,
        description="bearer token sent to the devices' chat APIs (their chat_token); "
        "unset: devices whose chat API needs a token refuse the gateway",
    )
    escalation: EscalationSettings = Field(
        default_factory=EscalationSettings,
        description="sending unsure answers' questions on to a stronger model",
    )
