"""Liveness (no auth) and the Prometheus scrape endpoint (viewer token)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, text
from sqlmodel import col, select

from controller.api.deps import SessionDep, StateDep, authorize
from controller.api.errors import ERROR_RESPONSES
from controller.api.prometheus import CONTENT_TYPE, render
from controller.models import Device

public_router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"], dependencies=[Depends(authorize)])


class Health(BaseModel):
    """Liveness answer."""

    status: str
    database: str
    db_latency_ms: float
    ingest: str | None = Field(
        None,
        description="ok, disconnected, taken_over (the broker said another client took its "
        "session), flapping (dropped 3 times within a minute: its client id is in use) or "
        "silent (devices online, nothing received); null: no ingest in this process",
    )


@public_router.get("/healthz", response_model=Health)
def healthz(session: SessionDep, state: StateDep, response: Response) -> Health:
    """Liveness, database reachability and whether ingest really receives; needs no token."""
    started = time.perf_counter()
    try:
        session.execute(text("SELECT 1"))
        latency_ms = (time.perf_counter() - started) * 1000
        online = select(func.count()).select_from(Device).where(col(Device.status) == "online")
        devices_online = int(session.exec(online).one())
    except Exception:  # noqa: BLE001 - any DB failure means "degraded"
        response.status_code = 503
        return Health(status="degraded", database="unreachable", db_latency_ms=0.0)
    ingest = state.ingest_health(devices_online)
    healthy = ingest is None or ingest.ok
    if not healthy:
        response.status_code = 503
    return Health(
        status="ok" if healthy else "degraded",
        database="ok",
        db_latency_ms=latency_ms,
        ingest=None if ingest is None else ingest.status,
    )


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, **ERROR_RESPONSES},
)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: ingest, dead letters, devices online, DB latency."""
    assert state.metrics is not None
    return Response(render(state.metrics), media_type=CONTENT_TYPE)
