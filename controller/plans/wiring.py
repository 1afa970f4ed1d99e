"""The planner's applier and profiler, built in one place from an engine, a sender and settings.

The composition roots (``ControllerRuntime`` for the planner loop, ``create_app``
for the HTTP routes, the ``plan`` CLI) all call :func:`build_planning`, so the
applier the loop uses and the one the API uses have the same rollout rules and
download URLs (the loop's is also fenced by the planner lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from controller.ingest.commands import CommandSender
from controller.plans.apply import Fence, PlanApplier, RolloutConfig
from controller.plans.profiler import Profiler, profiling_settings

if TYPE_CHECKING:
    from controller.core.config import ControllerSettings


@dataclass(frozen=True)
class Planning:
    """What sends planner commands: plan rollouts and profiling rounds."""

    applier: PlanApplier
    profiler: Profiler


def build_planning(
    engine: Engine,
    commands: CommandSender,
    settings: ControllerSettings,
    *,
    rollout: RolloutConfig | None = None,
    fence: Fence | None = None,
) -> Planning:
    """The applier (rollout timeout from ``settings`` unless given) and the fleet's profiler.

    With a ``fence`` (the planner lease's check) both refuse to write unless this
    replica holds the lease: the planner loop's pair; the API's has none.
    """
    return Planning(
        applier=PlanApplier(
            engine,
            commands,
            model_url=settings.model_file_url,
            config=rollout or RolloutConfig(timeout_s=settings.planner_rollout_timeout_s),
            fence=fence,
        ),
        profiler=Profiler(
            engine,
            commands,
            model_url=settings.model_file_url,
            suite_url=settings.suite_file_url,
            profiling=profiling_settings(settings),
            fence=fence,
        ),
    )
