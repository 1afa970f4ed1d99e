"""Liveness (no auth) and the Prometheus scrape endpoint (viewer token)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy import text

from controller.api.deps import SessionDep, StateDep, authorize
from controller.api.errors import ERROR_RESPONSES
from controller.api.prometheus import CONTENT_TYPE, render

public_router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"], dependencies=[Depends(authorize)])


class Health(BaseModel):
    """Liveness answer."""

    status: str
    database: str
    db_latency_ms: float


@public_router.get("/healthz", response_model=Health)
def healthz(session: SessionDep, response: Response) -> Health:
    """Liveness and database reachability; needs no token."""
    started = time.perf_counter()
    try:
        session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any DB failure means "degraded"
        response.status_code = 503
        return Health(status="degraded", database="unreachable", db_latency_ms=0.0)
    return Health(status="ok", database="ok", db_latency_ms=(time.perf_counter() - started) * 1000)


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, **ERROR_RESPONSES},
)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: ingest, dead letters, devices online, DB latency."""
    assert state.metrics is not None
    return Response(render(state.metrics), media_type=CONTENT_TYPE)
