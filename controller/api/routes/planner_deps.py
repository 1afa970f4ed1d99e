"""The app's own dependencies for the planner routes (``plans``, ``scores``, ``profiling``).

Auth is the app's: the API router's ``authorize`` already checks viewer for
reads and operator for mutations; these return the caller's name for the
records. The applier sends through the app's command sender and points
agents at the registry's real download route.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends
from sqlalchemy import Engine

from controller.api.deps import StateDep, require_role
from controller.api.errors import ApiError
from controller.api.routes import plans, profiling, scores
from controller.api.state import AppState
from controller.core.security import Principal, Role
from controller.plans.apply import PlanApplier, RolloutConfig
from controller.plans.profiler import Profiler, profiling_settings


def _engine(state: StateDep) -> Engine:
    return state.engine


ViewerDep = Annotated[Principal, Depends(require_role(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require_role(Role.OPERATOR))]


def _viewer(principal: ViewerDep) -> str:
    return principal.name


def _operator(principal: OperatorDep) -> str:
    return principal.name


def _sender(state: AppState) -> Any:
    sender = state.sender()
    if sender is None:
        raise ApiError(503, "no_broker", "this controller has no MQTT connection to send commands")
    return sender


def _applier(state: StateDep) -> PlanApplier:
    return applier_for(state, _sender(state))


def _profiler(state: StateDep) -> Profiler:
    """A profiler over the app's engine, command sender and the fleet's judge and reference."""
    return Profiler(
        state.engine,
        cast(Any, _sender(state)),
        model_url=state.settings.model_file_url,
        profiling=profiling_settings(state.settings),
    )


def applier_for(state: AppState, sender: Any) -> PlanApplier:
    """A plan applier over the app's engine and command sender (shared with the planner loop)."""
    return PlanApplier(
        state.engine,
        cast(Any, sender),
        model_url=state.settings.model_file_url,
        config=RolloutConfig(timeout_s=state.settings.planner_rollout_timeout_s),
    )


def routers() -> list[APIRouter]:
    """The planner's routers, built with the app's dependencies."""
    deps = plans.PlannerDeps(engine=_engine, viewer=_viewer, operator=_operator, applier=_applier)
    return [
        plans.make_router(deps),
        scores.make_router(deps.engine, deps.viewer),
        profiling.make_router(_profiler, deps.operator),
    ]
