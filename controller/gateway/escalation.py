"""Escalation: a small model's unsure answer goes on to a device serving a stronger model.

The small device's answer carries a confidence when its strategy checks itself (``vote:k``
agreement, verify-refine's verdict: ``edgefleet.confidence``). When the gateway allows
escalation, the request asks for it (``escalate: true``) and the confidence is below the
threshold, the question is asked again on an online device whose model measured better
(higher ``B`` in the scores) and whose measured latency fits what is left of the
request's ``latency_budget_ms``. Only whole (non-streamed) answers escalate: a stream has
already shown the small answer's tokens to the user. The threshold is the operator's;
``controller.planner.escalation`` calibrates one from paired suite answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller.gateway.accounting import strategy_of
from controller.gateway.fleet_view import serving_routes
from controller.gateway.routing import Route
from controller.ingest.bench_record import question_result
from controller.models import BenchmarkQuestion, BenchmarkRun
from controller.planner.escalation import ESCALATE_ALL, Calibration, calibrate, paired_items
from controller.planner.types import PlannerSettings
from controller.plans.inputs import current_scores
from shared.chat import ChatRequest
from shared.strategies import DIRECT

logger = logging.getLogger(__name__)

ThresholdSource = Literal["unset", "settings", "operator"]
Ask = Callable[[list[Route], ChatRequest], Awaitable[tuple[dict[str, Any], Route]]]
"""The gateway asking one of these devices for a whole answer (raises when none answers)."""


class EscalationSettings(BaseModel):
    """When the gateway may send an unsure answer's question to a stronger model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False, description="allow escalation for requests that ask for it (escalate: true)"
    )
    threshold: float | None = Field(
        None,
        ge=0,
        le=ESCALATE_ALL,
        description="escalate answers whose confidence is below this (confidences lie in "
        "[0, 1]; above 1 escalates every answer that has one); unset: no escalation",
    )
    calibrated: bool = Field(
        False,
        description="without an operator's threshold, use the one calibrated from stored "
        "bench rows for the answering model, the stronger one and the answer's strategy",
    )
    floor: float = Field(
        0.9, gt=0, le=1, description="calibration: the share of answers that must conform"
    )
    confidence: float = Field(
        0.95, ge=0.5, lt=1, description="calibration: the confidence of the floor's bound"
    )
    strengths_ttl_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="how long the models' measured quality and calibrations are cached",
    )


@dataclass(frozen=True)
class Escalation:
    """A question to ask again elsewhere, and why (``edgefleet.escalated`` in the reply)."""

    from_model: str
    from_device: str
    confidence: float
    threshold: float
    routes: list[Route]

    def report(self) -> dict[str, Any]:
        """The ``edgefleet.escalated`` object."""
        return {
            "from_model": self.from_model,
            "from_device": self.from_device,
            "confidence": self.confidence,
            "threshold": self.threshold,
        }


def confidence_of(answer: dict[str, Any]) -> float | None:
    """The answer's ``edgefleet.confidence`` if it is a number in [0, 1] (older agents: None)."""
    extension = answer.get("edgefleet")
    value = extension.get("confidence") if isinstance(extension, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return None
    return float(value)


def stronger_routes(
    routes: Sequence[Route],
    than: str,
    strengths: dict[str, float],
    *,
    budget_left_ms: float | None,
) -> list[Route]:
    """Devices of the strongest model measured better than ``than`` that fit the budget.

    With a budget, a device counts only if its measured p50 latency fits what is left;
    an unmeasured one cannot promise that and is left out.
    """
    floor = strengths.get(than)
    if floor is None:
        return []
    fitting = [
        r
        for r in routes
        if strengths.get(r.model_id, -1.0) > floor
        and (
            budget_left_ms is None or (r.latency_ms is not None and r.latency_ms <= budget_left_ms)
        )
    ]
    if not fitting:
        return []
    best = max(strengths[r.model_id] for r in fitting)
    return [r for r in fitting if strengths[r.model_id] == best]


def model_strengths(engine: Engine) -> dict[str, float]:
    """Each scored model's measured quality ``B`` (its ``direct`` option; the best class's)."""
    with Session(engine) as session:
        scores = current_scores(session, PlannerSettings())
    strengths: dict[str, float] = {}
    for rows in scores.values():
        for row in rows:
            if row.option.strategy == DIRECT.name:
                model = row.option.model_id
                strengths[model] = max(strengths.get(model, row.b), row.b)
    return strengths


MAX_CALIBRATION_ROWS = 100_000
"""Stored per-item rows read for one calibration (two models' bench rows; ~100 bytes each)."""


@dataclass(frozen=True)
class StoredCalibration:
    """A calibration from stored bench rows, and the suite version it stands on."""

    suite_sha256: str
    calibration: Calibration


def stored_calibration(
    engine: Engine, small: str, strong: str, strategy: str, *, floor: float, confidence: float
) -> StoredCalibration | None:
    """Calibrate on the suite version where both models have the most paired checked items.

    None when no suite has an item the small model answered with ``strategy`` (and a
    confidence) and the strong one answered ``direct``.
    """
    q, run = BenchmarkQuestion, BenchmarkRun
    with Session(engine) as session:
        rows = session.exec(
            select(q, run.suite_sha256)
            .join(run, col(run.id) == col(q.run_pk))
            .where(col(q.model_id).in_([small, strong]), col(q.correct).is_not(None))
            .where(col(run.suite_sha256).is_not(None))
            .order_by(col(q.id))
            .limit(MAX_CALIBRATION_ROWS)
        ).all()
        by_suite: dict[str, dict[str, list[Any]]] = {}
        for row, sha256 in rows:
            sides = by_suite.setdefault(str(sha256), {small: [], strong: []})
            sides[row.model_id].append(question_result(row))
    paired = {
        sha256: paired_items(sides[small], sides[strong], strategy=strategy)
        for sha256, sides in by_suite.items()
    }
    best = max(paired, key=lambda sha256: len(paired[sha256]), default=None)
    if best is None or not paired[best]:
        return None
    return StoredCalibration(best, calibrate(paired[best], floor=floor, confidence=confidence))


class Escalator:
    """Decides escalations, asks the stronger device, counts them; caches models' strengths."""

    def __init__(
        self,
        engine: Engine,
        settings: EscalationSettings,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self.threshold = settings.threshold
        self.source: ThresholdSource = "unset" if settings.threshold is None else "settings"
        self._strengths: tuple[float, dict[str, float]] | None = None
        self._calibrated: dict[tuple[str, str, str], tuple[float, float | None]] = {}
        self.escalations = Counter(
            "edgefleet_gateway_escalations",
            "Answers the gateway asked again on a stronger model, by outcome (escalated, "
            "no_stronger: no device fits, failed: the stronger device did not answer).",
            ["outcome", "from_model", "to_model"],
            registry=registry,
        )

    def confidence(self, request: ChatRequest, answer: dict[str, Any]) -> float | None:
        """The answer's confidence if escalation is on, asked for, and may apply to it."""
        if not (self.settings.enabled and request.escalate):
            return None
        confidence = confidence_of(answer)
        threshold = self.threshold
        if confidence is None or (threshold is not None and confidence >= threshold):
            return None
        if threshold is None and not self.settings.calibrated:
            return None
        return confidence

    async def escalate(
        self,
        request: ChatRequest,
        answer: dict[str, Any],
        route: Route,
        started: float,
        ask: Ask,
    ) -> tuple[dict[str, Any], Route, Escalation | None]:
        """The stronger device's answer if this one should go on and one answers; else this.

        ``started``: when the request arrived (``time.monotonic``), for its latency budget.
        A stronger device that fails leaves the small answer served: nothing is lost.
        """
        confidence = self.confidence(request, answer)
        if confidence is None:
            return answer, route, None
        strengths = await anyio.to_thread.run_sync(self.strengths)
        routes = await anyio.to_thread.run_sync(serving_routes, self.engine, None)
        budget = request.latency_budget_ms
        left = None if budget is None else budget - (time.monotonic() - started) * 1000
        stronger = stronger_routes(routes, route.model_id, strengths, budget_left_ms=left)
        if not stronger:
            self.count("no_stronger", route.model_id)
            return answer, route, None
        threshold = self.threshold
        if threshold is None:  # no operator's: the calibrated one for this pair, if any
            pair = (route.model_id, stronger[0].model_id, strategy_of(answer))
            threshold = await anyio.to_thread.run_sync(self.calibrated_threshold, *pair)
            if threshold is None or confidence >= threshold:
                return answer, route, None
        escalation = Escalation(route.model_id, route.device_id, confidence, threshold, stronger)
        try:
            second, strong = await ask(stronger, escalated_request(request))
        except Exception as exc:  # the gateway's refusal: the small answer stands
            logger.warning("gateway: escalation from %s failed: %s", route.device_id, exc)
            self.count("failed", route.model_id)
            return answer, route, None
        self.count("escalated", route.model_id, strong.model_id)
        mark(second, escalation)
        return second, strong, escalation

    def calibrated_threshold(self, small: str, strong: str, strategy: str) -> float | None:
        """The stored rows' chosen threshold for this pair (None: none meets the floor).

        Recomputed at most every ``strengths_ttl_s``.
        """
        key = (small, strong, strategy)
        now = self.clock()
        cached = self._calibrated.get(key)
        if cached is None or now - cached[0] > self.settings.strengths_ttl_s:
            found = stored_calibration(
                self.engine,
                small,
                strong,
                strategy,
                floor=self.settings.floor,
                confidence=self.settings.confidence,
            )
            chosen = None if found is None else found.calibration.chosen
            cached = self._calibrated[key] = (now, None if chosen is None else chosen.threshold)
        return cached[1]

    def strengths(self) -> dict[str, float]:
        """The models' measured quality, recomputed at most every ``strengths_ttl_s``."""
        now = self.clock()
        if self._strengths is None or now - self._strengths[0] > self.settings.strengths_ttl_s:
            self._strengths = (now, model_strengths(self.engine))
        return self._strengths[1]

    def set_threshold(self, threshold: float | None) -> None:
        """An operator's threshold for this process, over the settings' until a restart."""
        self.threshold, self.source = threshold, "operator"

    def count(self, outcome: str, from_model: str, to_model: str = "") -> None:
        """Count an escalation attempt and how it ended."""
        self.escalations.labels(outcome, from_model, to_model).inc()


def escalated_request(request: ChatRequest) -> ChatRequest:
    """The question as the stronger device gets it: its own default strategy, no escalation."""
    return request.model_copy(update={"strategy": None, "refine": None, "escalate": False})


def mark(answer: dict[str, Any], escalation: Escalation) -> None:
    """Say in the reply that it was escalated, and from where."""
    extension = answer.setdefault("edgefleet", {})
    if isinstance(extension, dict):
        extension["escalated"] = escalation.report()
