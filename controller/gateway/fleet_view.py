"""What the gateway reads from the database: online devices serving a model, and their speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller.gateway.routing import Route
from controller.models import Device, ServingMetric

ONLINE = "online"
QUEUE_REPORT_MAX_AGE = timedelta(minutes=2)
"""A heartbeat's queue depth older than this (a few heartbeats missed) is not ranked by."""


def usable_chat_url(url: str | None) -> str | None:
    """A device's reported chat API base URL if it is plain http(s) with a host, else None.

    The URL comes from the device's hello: anything else (credentials in it, other
    schemes) is not followed, so a device cannot point the gateway somewhere odd.
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return url.rstrip("/")


def serving_routes(engine: Engine, model_id: str | None) -> list[Route]:
    """Online devices serving ``model_id`` (None: any model), with their chat URL if usable."""
    query = select(Device).where(col(Device.status) == ONLINE, col(Device.model_id).is_not(None))
    if model_id is not None:
        query = query.where(col(Device.model_id) == model_id)
    with Session(engine) as session:
        routes = []
        for device in session.exec(query).all():
            url = usable_chat_url(device.chat_api_url)
            if device.model_id is None:
                continue
            latency = _latest_latency_ms(session, device.id, device.model_id)
            queued = reported_queue(device.last_heartbeat, device.last_heartbeat_at)
            routes.append(Route(device.id, device.model_id, url, latency, queued))
        return routes


def reported_queue(
    heartbeat: dict[str, Any] | None, sent_at: datetime | None, now: datetime | None = None
) -> int:
    """Requests running plus waiting in the device's latest heartbeat; 0 if none or stale."""
    if not heartbeat or sent_at is None:
        return 0
    if sent_at.tzinfo is None:  # SQLite hands back naive UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) - sent_at > QUEUE_REPORT_MAX_AGE:
        return 0
    queue = heartbeat.get("queue")
    if not isinstance(queue, dict):
        return 0
    active, waiting = queue.get("active"), queue.get("waiting")
    if not isinstance(active, int) or not isinstance(waiting, int):
        return 0
    return max(0, active) + max(0, waiting)


def _latest_latency_ms(session: Session, device_id: str, model_id: str) -> float | None:
    """The device's newest measured p50 answer latency with this model, if any."""
    query = (
        select(ServingMetric.latency_ms_p50)
        .where(
            col(ServingMetric.device_id) == device_id,
            col(ServingMetric.model_id) == model_id,
            col(ServingMetric.latency_ms_p50).is_not(None),
        )
        .order_by(col(ServingMetric.sent_at).desc())
        .limit(1)
    )
    return session.exec(query).first()
