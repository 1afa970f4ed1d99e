"""Turn validated envelopes into table rows and device-column updates (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.messages import (
    AckBody,
    Envelope,
    HeartbeatBody,
    HelloBody,
    MetricsBody,
    StateBody,
)


def _base(envelope: Envelope[Any], received_at: datetime) -> dict[str, Any]:
    return {
        "device_id": envelope.device_id,
        "seq": envelope.seq,
        "sent_at": envelope.sent_at,
        "received_at": received_at,
    }


def heartbeat_row(envelope: Envelope[HeartbeatBody], received_at: datetime) -> dict[str, Any]:
    """A ``heartbeat`` table row."""
    body = envelope.body
    row = _base(envelope, received_at) | body.model_dump(exclude={"download", "queue"})
    row["download"] = body.download.model_dump() if body.download else None
    return row


def metric_row(envelope: Envelope[MetricsBody], received_at: datetime) -> dict[str, Any]:
    """A ``serving_metric`` table row."""
    return _base(envelope, received_at) | envelope.body.model_dump()


def state_row(envelope: Envelope[StateBody], received_at: datetime) -> dict[str, Any]:
    """A ``device_state`` (history) row; an older agent's refine flag is read as its strategy."""
    body = envelope.body
    return (
        _base(envelope, received_at) | body.model_dump(mode="json") | {"strategy": body.served_by}
    )


def ack_row(envelope: Envelope[AckBody], received_at: datetime) -> dict[str, Any]:
    """A ``command_ack`` table row."""
    return _base(envelope, received_at) | envelope.body.model_dump(mode="json")


def hello_update(envelope: Envelope[HelloBody]) -> dict[str, Any]:
    """Device columns a ``hello`` sets."""
    body = envelope.body
    hardware = body.hardware
    return {
        "agent_version": body.agent_version,
        "hello_class": body.device_class,
        "arch": hardware.arch,
        "cpu_model": hardware.cpu_model,
        "cores": hardware.cores,
        "ram_total_mb": hardware.ram_total_mb,
        "disk_free_mb": hardware.disk_free_mb,
        "hardware": hardware.model_dump(mode="json"),
        "engine": body.engine.model_dump(mode="json") if body.engine else None,
        "cached_models": [m.model_dump(mode="json") for m in body.cached_models],
        "chat_api_url": body.chat_api_url,
        "hello_at": envelope.sent_at,
        "schema_version": envelope.version,
    }


def state_update(envelope: Envelope[StateBody]) -> dict[str, Any]:
    """Device columns a ``state`` sets."""
    body = envelope.body
    return {
        "status": body.status.value,
        "model_id": body.model_id,
        "model_sha256": body.model_sha256,
        "refine": body.refine,
        "strategy": body.served_by,
        "activity": body.activity,
        "state_detail": body.detail,
        "state_at": envelope.sent_at,
    }


def heartbeat_update(envelope: Envelope[HeartbeatBody]) -> dict[str, Any]:
    """Device columns a ``heartbeat`` sets."""
    return {
        "last_heartbeat_at": envelope.sent_at,
        "last_heartbeat": envelope.body.model_dump(mode="json"),
    }
