"""The gateway's escalation threshold: read it and its calibration (viewer), set it (operator).

The settings' ``gateway.escalation.threshold`` holds at start; an operator may set another
(for example the one calibrated from stored bench rows) until the controller restarts.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import StateDep
from controller.api.errors import ApiError
from controller.api.routes.gateway import GatewayDep
from controller.gateway.escalation import ThresholdSource, stored_calibration
from controller.planner.escalation import ESCALATE_ALL, ThresholdRow
from shared.strategies import StrategyName

router = APIRouter(prefix="/gateway/escalation", tags=["gateway"])


class EscalationState(BaseModel):
    """Whether the gateway escalates, below which confidence, and who set it."""

    enabled: bool
    threshold: float | None
    source: ThresholdSource
    calibrated: bool
    """Without a threshold here, each pair's calibrated one applies (``/calibration``)."""


class ThresholdUpdate(BaseModel):
    """A new threshold; null stops escalation."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(..., ge=0, le=ESCALATE_ALL)


def _state(gateway: GatewayDep) -> EscalationState:
    escalator = gateway.escalator
    return EscalationState(
        enabled=escalator.settings.enabled,
        threshold=escalator.threshold,
        source=escalator.source,
        calibrated=escalator.settings.calibrated,
    )


@router.get("", response_model=EscalationState)
def get_escalation(gateway: GatewayDep) -> EscalationState:
    """The threshold in force; escalation needs ``enabled`` and a request's ``escalate``."""
    return _state(gateway)


@router.put("", response_model=EscalationState)
def set_escalation(update: ThresholdUpdate, gateway: GatewayDep) -> EscalationState:
    """Set the threshold for this controller process (operator)."""
    gateway.escalator.set_threshold(update.threshold)
    return _state(gateway)


class CalibrationRow(BaseModel):
    """The cascade at one threshold: escalate answers whose confidence is below it."""

    threshold: float
    escalated: int
    share_escalated: float
    accuracy: float
    quality_retained: float | None
    quality_retained_interval: tuple[float, float] | None
    conforming: int
    conforming_lower_bound: float
    device_s_per_answer: float
    strong_s_per_answer: float
    saving: float

    @classmethod
    def of(cls, row: ThresholdRow) -> CalibrationRow:
        """A row of the calibration table."""
        interval = row.retained_interval
        return cls(
            threshold=row.threshold,
            escalated=row.escalated,
            share_escalated=row.share_escalated,
            accuracy=row.accuracy,
            quality_retained=row.retained,
            quality_retained_interval=None if interval is None else (interval.low, interval.high),
            conforming=row.conforming,
            conforming_lower_bound=row.conforming_low,
            device_s_per_answer=row.device_s_per_answer,
            strong_s_per_answer=row.strong_s_per_answer,
            saving=row.saving,
        )


class CalibrationTable(BaseModel):
    """Every candidate threshold, and the cheapest meeting the floor (null: none does)."""

    suite_sha256: str
    n: int
    floor: float
    confidence: float
    strong_accuracy: float
    chosen_threshold: float | None
    rows: list[CalibrationRow]


ModelId = Annotated[str, Query(min_length=1, max_length=128)]


@router.get("/calibration", response_model=CalibrationTable)
async def get_calibration(
    state: StateDep,
    small_model: ModelId,
    strong_model: ModelId,
    strategy: Annotated[StrategyName, Query()] = "vote:3",
    floor: Annotated[float, Query(gt=0, le=1)] = 0.9,
    confidence: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
) -> CalibrationTable:
    """The threshold calibrated from stored bench rows: both models on one suite version.

    The small model benchmarked with ``strategy`` (vote:K or verify-refine, by an agent
    that keeps the confidence), the strong one with ``direct``; 404 when no suite has both.
    """
    found = await anyio.to_thread.run_sync(
        lambda: stored_calibration(
            state.engine, small_model, strong_model, strategy, floor=floor, confidence=confidence
        )
    )
    if found is None:
        raise ApiError(
            404,
            "not_found",
            f"no suite has items {small_model!r} answered with {strategy} (with a confidence) "
            f"and {strong_model!r} answered direct",
        )
    calibration = found.calibration
    chosen = calibration.chosen
    return CalibrationTable(
        suite_sha256=found.suite_sha256,
        n=calibration.n,
        floor=floor,
        confidence=confidence,
        strong_accuracy=calibration.strong_accuracy,
        chosen_threshold=None if chosen is None else chosen.threshold,
        rows=[CalibrationRow.of(row) for row in calibration.rows],
    )
