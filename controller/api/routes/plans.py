"""Plans: dry run (stores nothing), draft (stored), apply in waves, history, status, pins.

Built by :func:`make_router` from the app's dependencies (engine, role checks,
the plan applier), so the composition root decides how they are provided.
"""

# No `from __future__ import annotations`: FastAPI must see the Annotated dependency
# aliases built inside make_router as real objects, not as strings.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller import models as db
from controller.api.errors import ERROR_RESPONSES, bad_request, conflict, not_found
from controller.api.pagination import MAX_LIMIT, MAX_ROW_ID, RowId
from controller.core.db import session_scope
from controller.planner.fleet import FleetConstraints
from controller.plans.apply import PlanApplier, PlanError
from controller.plans.service import draft_plan, dry_run_plan, plan_detail, plan_history
from shared.strategies import StrategyName


@dataclass(frozen=True)
class PlannerDeps:
    """FastAPI dependencies the planner routes need; each is used with ``Depends``."""

    engine: Callable[..., Engine]
    viewer: Callable[..., str]
    """Checks a viewer (or better) token; returns the caller's name."""
    operator: Callable[..., str]
    applier: Callable[..., PlanApplier]


class DraftRequest(BaseModel):
    """Draft a plan, optionally under fleet constraints."""

    model_config = ConfigDict(extra="forbid")

    min_devices_per_model: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=dict
    )
    quality_floor: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="per category, minimum conformance accuracy"
    )
    floor_confidence: float = Field(0.95, gt=0, lt=1)
    max_changes: int | None = Field(None, ge=0, le=2**31 - 1)

    def constraints(self) -> FleetConstraints:
        """The fleet constraints this request asks for."""
        return FleetConstraints(
            min_devices_per_model=self.min_devices_per_model,
            quality_floor=self.quality_floor,
            floor_confidence=self.floor_confidence,
            max_changes=self.max_changes,
        )


class PlanRequest(DraftRequest):
    """Apply a draft (or draft and apply now), optionally under fleet constraints."""

    plan_id: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="the draft to apply; none: draft one now"
    )


class PinIn(BaseModel):
    """Pin a model to a device, or exclude a model from a device, a class or everywhere."""

    model_config = ConfigDict(extra="forbid")

    kind: db.PinKind = db.PinKind.PIN
    model_id: str = Field(min_length=1, max_length=128)
    device_id: str | None = Field(None, max_length=63)
    device_class: str | None = Field(None, max_length=64)
    refine: bool | None = None
    strategy: StrategyName | None = Field(
        None, description="pin this strategy too (overrides refine); null: by refine, else any"
    )
    reason: str = Field("", max_length=1024)

    @model_validator(mode="after")
    def _pin_needs_device(self) -> "PinIn":
        if self.kind == db.PinKind.PIN and self.device_id is None:
            raise ValueError("a pin names the device it applies to")
        return self


def make_router(deps: PlannerDeps) -> APIRouter:
    """The /plans and /pins routes."""
    router = APIRouter(tags=["plans"], responses=ERROR_RESPONSES)
    EngineDep = Annotated[Engine, Depends(deps.engine)]
    Viewer = Annotated[str, Depends(deps.viewer)]
    Operator = Annotated[str, Depends(deps.operator)]
    ApplierDep = Annotated[PlanApplier, Depends(deps.applier)]

    _draft_routes(router, EngineDep, Viewer, Operator)

    @router.post("/plans", status_code=status.HTTP_202_ACCEPTED)
    def apply_plan(
        body: PlanRequest, engine: EngineDep, applier: ApplierDep, who: Operator
    ) -> dict[str, Any]:
        """Apply a draft in waves: a canary per class first, rollback if a wave fails."""
        plan_id = body.plan_id
        if plan_id is None:
            plan_id = draft_plan(engine, constraints=body.constraints(), created_by=who)
        try:
            message = applier.apply(plan_id, created_by=who)
        except PlanError as exc:
            raise conflict(str(exc)) from None
        with Session(engine) as session:
            return {"message": message, **(plan_detail(session, plan_id) or {})}

    @router.get("/plans")
    def list_plans(
        engine: EngineDep, _: Viewer, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20
    ) -> list[dict[str, Any]]:
        """Plan history, newest first."""
        with Session(engine) as session:
            return [p.model_dump(mode="json") for p in plan_history(session, limit)]

    @router.get("/plans/{plan_id}")
    def get_plan(plan_id: RowId, engine: EngineDep, _: Viewer) -> dict[str, Any]:
        """A plan with each device's assignment, rollout status and reasons."""
        with Session(engine) as session:
            detail = plan_detail(session, plan_id)
        if detail is None:
            raise not_found(f"plan {plan_id}")
        return detail

    @router.post("/plans/{plan_id}/advance")
    def advance(plan_id: RowId, applier: ApplierDep, _: Operator) -> dict[str, str]:
        """Look at the running wave now: next wave, done, or rollback."""
        try:
            return {"state": applier.tick(plan_id)}
        except PlanError as exc:
            raise conflict(str(exc)) from None

    _pin_routes(router, EngineDep, Viewer, Operator)
    return router


def _draft_routes(router: APIRouter, EngineDep: Any, Viewer: Any, Operator: Any) -> None:  # noqa: N803
    @router.get("/plans/draft")
    def dry_run(engine: EngineDep, who: Viewer) -> dict[str, Any]:
        """Dry run, nothing stored: what each device would run, the runner-up, why others lost."""
        return dry_run_plan(engine, created_by=who)

    @router.post("/plans/draft", status_code=status.HTTP_201_CREATED)
    def store_draft(body: DraftRequest, engine: EngineDep, who: Operator) -> dict[str, Any]:
        """Compute and store a draft (the older draft is superseded) that POST /plans applies."""
        plan_id = draft_plan(engine, constraints=body.constraints(), created_by=who)
        with Session(engine) as session:
            return plan_detail(session, plan_id) or {}


def _pin_routes(router: APIRouter, EngineDep: Any, Viewer: Any, Operator: Any) -> None:  # noqa: N803
    @router.get("/pins")
    def list_pins(engine: EngineDep, _: Viewer) -> list[dict[str, Any]]:
        """Operator pins and exclusions the planner obeys."""
        with Session(engine) as session:
            rows = session.exec(select(db.Pin).order_by(col(db.Pin.id))).all()
            return [r.model_dump(mode="json") for r in rows]

    @router.post("/pins", status_code=status.HTTP_201_CREATED)
    def add_pin(body: PinIn, engine: EngineDep, who: Operator) -> dict[str, Any]:
        """Pin a model to a device, or exclude one; the next plan obeys it."""
        if body.kind == db.PinKind.EXCLUDE and body.device_id and body.device_class:
            raise bad_request("bad_pin", "an exclusion names a device or a class, not both")
        with session_scope(engine) as session:
            row = db.Pin(**body.model_dump(), created_by=who)
            session.add(row)
            session.flush()
            return row.model_dump(mode="json")

    @router.delete("/pins/{pin_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_pin(pin_id: RowId, engine: EngineDep, _: Operator) -> None:
        """Remove a pin or exclusion."""
        with session_scope(engine) as session:
            row = session.get(db.Pin, pin_id)
            if row is None:
                raise not_found(f"pin {pin_id}")
            session.delete(row)
