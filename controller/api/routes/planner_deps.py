"""The app's own dependencies for the planner routes (``plans``, ``scores``, ``profiling``).

Auth is the app's: the API router's ``authorize`` already checks viewer for
reads and operator for mutations; these return the caller's name for the
records. The applier and profiler are the app's (``AppState.planning``, built
once by the composition root); without a command sender the routes answer 503.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import Engine

from controller.api.deps import OperatorDep, PlanningDep, StateDep, ViewerDep
from controller.api.routes import plans, profiling, scores
from controller.plans.apply import PlanApplier
from controller.plans.profiler import Profiler


def _engine(state: StateDep) -> Engine:
    return state.engine


def _viewer(principal: ViewerDep) -> str:
    return principal.name


def _operator(principal: OperatorDep) -> str:
    return principal.name


def _applier(planning: PlanningDep) -> PlanApplier:
    return planning.applier


def _profiler(planning: PlanningDep) -> Profiler:
    return planning.profiler


def routers() -> list[APIRouter]:
    """The planner's routers, built with the app's dependencies."""
    deps = plans.PlannerDeps(engine=_engine, viewer=_viewer, operator=_operator, applier=_applier)
    return [
        plans.make_router(deps),
        scores.make_router(deps.engine, deps.viewer),
        profiling.make_router(_profiler, deps.operator),
    ]
