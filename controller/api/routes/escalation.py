"""The gateway's escalation threshold: read it (viewer), set it (operator).

The settings' ``gateway.escalation.threshold`` holds at start; an operator may set another
(for example the one ``bench/escalation.py`` calibrated) until the controller restarts.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from controller.api.routes.gateway import GatewayDep
from controller.gateway.escalation import ThresholdSource
from controller.planner.escalation import ESCALATE_ALL

router = APIRouter(prefix="/gateway/escalation", tags=["gateway"])


class EscalationState(BaseModel):
    """Whether the gateway escalates, below which confidence, and who set it."""

    enabled: bool
    threshold: float | None
    source: ThresholdSource


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
