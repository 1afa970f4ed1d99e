"""The PeRFICS leaderboard: per device class, and the hardware-independent view."""

# No `from __future__ import annotations`: FastAPI must see the Annotated dependency
# aliases built inside make_router as real objects, not as strings.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import Engine
from sqlmodel import Session

from controller.api.errors import ERROR_RESPONSES
from controller.planner.scores import hardware_independent_view
from controller.planner.types import PlannerSettings
from controller.plans.inputs import current_scores
from controller.plans.service import ranked_rows


def make_router(engine: Callable[..., Engine], viewer: Callable[..., str]) -> APIRouter:
    """The /scores route, with the app's engine and viewer-role dependencies."""
    router = APIRouter(tags=["scores"], responses=ERROR_RESPONSES)
    EngineDep = Annotated[Engine, Depends(engine)]
    Viewer = Annotated[str, Depends(viewer)]

    @router.get("/scores")
    def get_scores(engine: EngineDep, _: Viewer, device_class: str | None = None) -> dict[str, Any]:
        """Leaderboard per class (B, I with CIs, E, C, Psi, flags) and the memory-cost view."""
        settings = PlannerSettings()
        with Session(engine) as session:
            scores = current_scores(session, settings)
        classes = {
            cls: ranked_rows(rows)
            for cls, rows in scores.items()
            if device_class is None or cls == device_class
        }
        hardware = [
            {
                "model_id": r.option.model_id,
                "refine": r.option.refine,
                "strategy": r.option.strategy,
                "B": r.b,
                "I": r.i,
                "memory_gb": r.memory_gb,
                "psi_memory": r.psi_memory,
            }
            for r in hardware_independent_view(scores)
        ]
        return {
            "weights": settings.weights.model_dump(),
            "classes": classes,
            "hardware_independent": hardware,
        }

    return router
