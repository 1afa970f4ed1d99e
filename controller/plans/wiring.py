"""The planner's applier, profiler and grader, built in one place from engine, sender, settings.

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
from controller.plans.grading import Grader
from controller.plans.profiler import Profiler, profiling_settings

if TYPE_CHECKING:
    from controller.core.config import ControllerSettings


@dataclass(frozen=True)
class Planning:
    """What sends planner commands: plan rollouts, profiling rounds and judge steps."""

    applier: PlanApplier
    profiler: Profiler
    grader: Grader


def build_planning(
    engine: Engine,
    commands: CommandSender,
    settings: ControllerSettings,
    *,
    rollout: RolloutConfig | None = None,
    fence: Fence | None = None,
) -> Planning:
    """The applier (rollout timeout from ``settings`` unless given) and the fleet's profiler.

    With a ``fence`` (the planner lease's check) all three refuse to write unless this
    replica holds the lease: the planner loop's; the API's have none.
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
        grader=Grader(
            engine,
            commands,
            model_url=settings.model_file_url,
            judge_model_id=settings.judge_model_id,
            reference_model_id=settings.reference_model_id,
            timeout_s=settings.profiling_bench_timeout_s,
            fence=fence,
        ),
    )
