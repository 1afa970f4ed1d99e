"""The newest serving-metrics report of every device, in one call for fleet overviews."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import and_, func
from sqlmodel import col, select

from controller.api.deps import SessionDep
from controller.models import ServingMetric

router = APIRouter(prefix="/serving", tags=["devices"])


class LatestServing(BaseModel):
    """A device's newest ``metrics`` report: throughput and latency over its window."""

    device_id: str
    sent_at: datetime
    window_s: float
    model_id: str | None
    requests: int
    errors: int
    decode_tok_s: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None


@router.get("/latest", response_model=list[LatestServing])
def latest_serving(session: SessionDep) -> list[ServingMetric]:
    """Each device's newest serving metrics (tok/s, latency p50/p95), by device id."""
    newest = (
        select(
            col(ServingMetric.device_id).label("device_id"),
            func.max(ServingMetric.sent_at).label("sent_at"),
        )
        .group_by(col(ServingMetric.device_id))
        .subquery()
    )
    stmt = (
        select(ServingMetric)
        .join(
            newest,
            and_(
                col(ServingMetric.device_id) == newest.c.device_id,
                col(ServingMetric.sent_at) == newest.c.sent_at,
            ),
        )
        .order_by(col(ServingMetric.device_id), col(ServingMetric.seq).desc())
    )
    latest: dict[str, ServingMetric] = {}
    for row in session.exec(stmt).all():
        latest.setdefault(row.device_id, row)  # two reports with one timestamp: the higher seq
    return list(latest.values())
