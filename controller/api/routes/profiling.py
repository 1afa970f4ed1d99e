"""Profiling: send benchmarks for the (model, class) pairs whose measurement could change the plan.

Built by :func:`make_router` from the app's dependencies, like the plan routes.
"""

# No `from __future__ import annotations`: FastAPI must see the Annotated dependency
# aliases built inside make_router as real objects, not as strings.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from controller.api.errors import ERROR_RESPONSES, conflict
from controller.plans.profiler import Profiler, ProfilingError, ProfilingSent
from shared.profiles import ClassName


class ProfilingRequest(BaseModel):
    """How many pairs to profile in this round at most, and where."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(5, ge=1, le=100, description="most bench commands to send")
    device_class: ClassName | None = Field(None, description="profile this class only")


class ProfilingRound(BaseModel):
    """What one profiling round sent."""

    sent: list[ProfilingSent]
    message: str


def make_router(profiler: Callable[..., Profiler], operator: Callable[..., str]) -> APIRouter:
    """The POST /profiling route, with the app's profiler and operator-role dependencies."""
    router = APIRouter(tags=["profiling"], responses=ERROR_RESPONSES)
    ProfilerDep = Annotated[Profiler, Depends(profiler)]
    Operator = Annotated[str, Depends(operator)]

    @router.post("/profiling", response_model=ProfilingRound, status_code=status.HTTP_202_ACCEPTED)
    def profile(body: ProfilingRequest, runner: ProfilerDep, who: Operator) -> ProfilingRound:
        """Bench the pairs that could beat their class's best, each on an idle device, judged."""
        try:
            sent = runner.run(limit=body.limit, device_class=body.device_class, created_by=who)
        except ProfilingError as exc:
            raise conflict(str(exc)) from None
        message = (
            f"{len(sent)} bench command(s) sent"
            if sent
            else "nothing to profile: no unmeasured pair could beat its class's best, "
            "or no idle online device for it"
        )
        return ProfilingRound(sent=sent, message=message)

    return router
