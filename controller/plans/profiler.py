"""Sending profiling benches: the (model, class) pairs whose measurement could change the plan most.

One read of the database, then the pure choice in ``outlook.py``: devices with
a bench still running get none and pairs already being profiled are not sent
twice; each command carries the fleet's judge and reference where they fit
the class, and the registry download source of every model it names, so the
device fetches what it lacks. The API (``POST /profiling``), ``edgefleet plan
profile`` and, with ``planner_auto_profile``, the planner loop call this.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller import models as db
from controller.ingest.commands import CommandSender
from controller.models import utcnow
from controller.planner.filters import build_views
from controller.planner.outlook import (
    ProfilingPick,
    bench_commands,
    class_calibrations,
    grading_for,
    profiling_outlooks,
)
from controller.planner.types import PlannerSettings, ProfilingSettings
from controller.plans.inputs import PlannerInputs, load_inputs
from controller.registry.sources import registry_sources
from controller.registry.suites import suite_source
from shared.messages import SuiteSource

logger = logging.getLogger(__name__)
UNFINISHED = (
    db.CommandStatus.PENDING.value,
    db.CommandStatus.SENT.value,
    db.CommandStatus.ACCEPTED.value,
)


class ProfilingError(ValueError):
    """Profiling cannot run as configured (a judge or reference the registry lacks)."""


@dataclass(frozen=True)
class ProfilingSent:
    """A profiling bench that was sent (or refused), and why its pair was chosen."""

    device_id: str
    device_class: str
    model_id: str
    command_id: str
    judge_model_id: str | None
    reference_model_id: str | None
    status: str
    reason: str


def profiling_settings(settings: Any) -> ProfilingSettings:
    """The profiling part of the controller's settings (``ControllerSettings``)."""
    return ProfilingSettings(
        judge_model_id=settings.judge_model_id,
        reference_model_id=settings.reference_model_id,
        questions_per_pair=settings.profiling_questions,
        strategies=tuple(settings.profiling_strategies),
        suite_id=settings.profiling_suite_id,
        bench_timeout_s=settings.profiling_bench_timeout_s,
    )


@dataclass(frozen=True)
class InFlight:
    """Devices with a bench still unanswered, and the (model, class) pairs being measured."""

    devices: frozenset[str]
    pairs: frozenset[tuple[str, str]]


class Profiler:
    """Chooses and sends profiling benches over one engine and command publisher."""

    def __init__(
        self,
        engine: Engine,
        commands: CommandSender,
        *,
        model_url: Callable[[str], str],
        suite_url: Callable[[str], str] | None = None,
        profiling: ProfilingSettings | None = None,
        settings: PlannerSettings | None = None,
        fence: Callable[[Session], None] | None = None,
    ) -> None:
        self.engine, self.commands, self.model_url = engine, commands, model_url
        self.suite_url = suite_url
        self.fence = fence  # the planner lease's check, when rounds run under it
        self.profiling = profiling or ProfilingSettings()
        self.settings = settings or PlannerSettings()

    def run(
        self, *, limit: int = 5, device_class: str | None = None, created_by: str | None = None
    ) -> list[ProfilingSent]:
        """Send up to ``limit`` bench commands (to one class only, if given); say what and why."""
        with Session(self.engine) as session:
            inputs = load_inputs(session)
            in_flight = self._in_flight(session, inputs)
        self._check_graders(inputs)
        suite = self._suite()  # an unknown suite fails before any pick
        picks = self.choose(inputs, in_flight, limit=limit, device_class=device_class)
        sent = [self._send(pick, suite, created_by) for pick in picks]
        logger.info("profiling: %d bench command(s) sent", len(sent))
        return sent

    def choose(
        self,
        inputs: PlannerInputs,
        in_flight: InFlight,
        *,
        limit: int,
        device_class: str | None = None,
    ) -> list[ProfilingPick]:
        """The pure part: pairs worth profiling, their idle devices and graders."""
        settings, questions = self.settings, self.profiling.questions_per_pair
        scores = inputs.scores(settings)
        views = build_views(scores, inputs.profiles, inputs.models, settings, inputs.exclusions)
        cals = class_calibrations(inputs.profiles, inputs.runs, inputs.models, settings)
        outlooks = [
            o
            for o in profiling_outlooks(
                views,
                scores,
                inputs.models,
                cals,
                inputs.devices,
                settings,
                questions=questions,
                exclusions=inputs.exclusions,
            )
            if (o.model_id, o.device_class) not in in_flight.pairs
            and device_class in (None, o.device_class)
        ]
        grading = {
            name: grading_for(profile, inputs.models, self.profiling, settings)
            for name, profile in inputs.profiles.items()
        }
        return bench_commands(
            outlooks,
            inputs.devices,
            limit=limit,
            tag=f"prof-{uuid.uuid4().hex[:8]}",  # unique per round: a pair may be tried again
            grading=grading,
            questions=questions,
            strategies=self.profiling.strategies,
            busy=in_flight.devices,
        )

    def _suite(self) -> SuiteSource | None:
        suite_id = self.profiling.suite_id
        if suite_id is None:
            return None
        url = self.suite_url(suite_id) if self.suite_url else None
        try:
            with Session(self.engine) as session:
                return suite_source(session, suite_id, url)
        except LookupError as exc:
            raise ProfilingError(str(exc)) from None

    def _check_graders(self, inputs: PlannerInputs) -> None:
        for role in ("judge_model_id", "reference_model_id"):
            model_id = getattr(self.profiling, role)
            if model_id is not None and model_id not in inputs.models:
                raise ProfilingError(f"{role} {model_id!r} is not in the model registry")

    def _in_flight(self, session: Session, inputs: PlannerInputs) -> InFlight:
        """Devices with a bench still unanswered, and the (model, class) pairs it measures."""
        since: datetime = utcnow() - timedelta(seconds=self.profiling.bench_timeout_s)
        rows = session.exec(
            select(db.Command)
            .where(col(db.Command.type) == "bench")
            .where(col(db.Command.status).in_(UNFINISHED))
            .where(col(db.Command.created_at) >= since)
        ).all()
        classes = {d.device_id: d.device_class for d in inputs.devices}
        pairs = {
            (str(model_id), classes[row.device_id])
            for row in rows
            if row.device_id in classes
            for model_id in row.body.get("model_ids", [])
        }
        return InFlight(frozenset(row.device_id for row in rows), frozenset(pairs))

    def _send(
        self, pick: ProfilingPick, suite: SuiteSource | None, created_by: str | None
    ) -> ProfilingSent:
        with Session(self.engine) as session:
            sources = registry_sources(session, pick.command.named_model_ids(), self.model_url)
        command = pick.command.model_copy(update={"sources": sources, "suite": suite})
        try:
            status = self.commands.send(
                device_id=pick.device_id, command=command, created_by=created_by,
                fence=self.fence,
            ).status  # fmt: skip
        except (LookupError, ValueError) as exc:
            status = f"refused: {exc}"
        return ProfilingSent(
            device_id=pick.device_id,
            device_class=pick.device_class,
            model_id=pick.model_id,
            command_id=command.command_id,
            judge_model_id=command.judge_model_id,
            reference_model_id=command.reference_model_id,
            status=status,
            reason=pick.reason,
        )
