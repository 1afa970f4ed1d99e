"""The planner against the database: read inputs, run the pure core, dry runs, drafts, history."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from controller import models as db
from controller.core.db import session_scope
from controller.planner.assign import Decision, plan_devices
from controller.planner.filters import build_views
from controller.planner.fleet import FleetConstraints, plan_fleet
from controller.planner.runner_up import strategy_runner_up
from controller.planner.scores import OptionScore
from controller.planner.types import Option, PlannerSettings
from controller.plans.inputs import PlannerInputs, load_inputs
from shared.quality import conformance_counts, strategies_in
from shared.strategies import DIRECT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    """Decisions for every device, the scores they came from, and the solver's word."""

    decisions: list[Decision]
    scores: dict[str, list[OptionScore]]
    status: str


def _conformance(inputs: PlannerInputs) -> dict[Option, dict[str, tuple[int, int]]]:
    """Per option and category: conforming / judged, pooled over every run of the model."""
    pooled: dict[Option, dict[str, list[int]]] = {}
    for run in inputs.runs:
        for strategy in [DIRECT.name, *strategies_in(run.questions)]:
            rows = [q for q in run.questions if q.served_by == strategy]
            counts = conformance_counts(rows, refined=strategy != DIRECT.name)
            per = pooled.setdefault(Option(run.model_id, strategy), {})
            for category, (k, n) in counts.items():
                acc = per.setdefault(category, [0, 0])
                acc[0] += k
                acc[1] += n
    return {o: {k: (v[0], v[1]) for k, v in c.items()} for o, c in pooled.items()}


def compute_plan(
    inputs: PlannerInputs,
    settings: PlannerSettings,
    constraints: FleetConstraints | None = None,
) -> PlanResult:
    """The pure pipeline: scores, class filters, then per-device choice or the fleet MILP."""
    scores = inputs.scores(settings)
    views = build_views(scores, inputs.profiles, inputs.models, settings, inputs.exclusions)
    if constraints is None or constraints.empty:
        decisions = plan_devices(
            inputs.devices,
            views,
            inputs.models,
            settings,
            exclusions=inputs.exclusions,
            pins=inputs.pins,
        )
        return PlanResult(decisions, scores, "optimal")
    result = plan_fleet(
        inputs.devices,
        views,
        inputs.models,
        settings,
        constraints,
        conformance=_conformance(inputs),
        exclusions=inputs.exclusions,
        pins=inputs.pins,
    )
    return PlanResult(result.decisions, scores, result.status)


def _assignment_status(decision: Decision, current: Option | None) -> str:
    if decision.option is None:
        return "unplanned"
    return "unchanged" if decision.option == current else "change"


def _reasons(decision: Decision) -> list[str]:
    head = [decision.note]
    if decision.runner_up is not None:
        head.append(
            f"runner-up: {decision.runner_up.option.label()} (Psi {decision.runner_up.psi:.4f})"
        )
    strategy = strategy_runner_up(decision)
    return head + ([strategy] if strategy else []) + decision.reasons()


@dataclass(frozen=True)
class ComputedPlan:
    """A plan and its per-device assignments as computed, before (or without) storing them."""

    plan: db.Plan
    assignments: list[db.Assignment]

    def detail(self) -> dict[str, Any]:
        """The same JSON shape as :func:`plan_detail` (ids null while not stored)."""
        return _detail(self.plan, self.assignments)


def build_plan(
    inputs: PlannerInputs,
    settings: PlannerSettings,
    constraints: FleetConstraints | None = None,
    *,
    status: str = db.PlanStatus.DRAFT.value,
    created_by: str | None = None,
) -> ComputedPlan:
    """Run the pipeline and turn its decisions into a plan summary and assignment rows."""
    result = compute_plan(inputs, settings, constraints)
    current = {d.device_id: d.current for d in inputs.devices}
    statuses = [_assignment_status(d, current.get(d.device_id)) for d in result.decisions]
    summary = (
        f"{statuses.count('change')} to change, {statuses.count('unchanged')} unchanged, "
        f"{statuses.count('unplanned')} without a feasible option; solver {result.status}"
    )
    plan = db.Plan(
        status=status,
        params={
            "settings": settings.model_dump(mode="json"),
            "constraints": asdict(constraints) if constraints else None,
        },
        summary=summary,
        reasons=[result.status],
        created_by=created_by,
    )
    rows = [_assignment_row(d, s) for d, s in zip(result.decisions, statuses, strict=True)]
    return ComputedPlan(plan, sorted(rows, key=lambda r: r.device_id))


def _compute_from_db(
    engine: Engine,
    settings: PlannerSettings | None,
    constraints: FleetConstraints | None,
    **plan_fields: Any,
) -> ComputedPlan:
    """Read the planner's inputs in one session, then compute outside it."""
    with Session(engine) as session:
        inputs = load_inputs(session)
    return build_plan(inputs, settings or PlannerSettings(), constraints, **plan_fields)


def dry_run_plan(
    engine: Engine,
    *,
    settings: PlannerSettings | None = None,
    constraints: FleetConstraints | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """What a draft would be now, shaped like :func:`plan_detail`; nothing is stored."""
    computed = _compute_from_db(
        engine, settings, constraints, status=db.PlanStatus.DRY_RUN.value, created_by=created_by
    )
    return computed.detail()


def draft_plan(
    engine: Engine,
    *,
    settings: PlannerSettings | None = None,
    constraints: FleetConstraints | None = None,
    created_by: str | None = None,
) -> int:
    """Compute a plan and store it as the draft (older drafts are superseded); return its id."""
    computed = _compute_from_db(engine, settings, constraints, created_by=created_by)
    with session_scope(engine) as session:
        session.execute(
            update(db.Plan)
            .where(col(db.Plan.status) == db.PlanStatus.DRAFT.value)
            .values(status=db.PlanStatus.SUPERSEDED.value)
        )
        session.add(computed.plan)
        session.flush()
        plan_id = int(computed.plan.id or 0)
        for row in computed.assignments:
            row.plan_id = plan_id
            session.add(row)
    logger.info("plan %d drafted: %s", plan_id, computed.plan.summary)
    return plan_id


def _assignment_row(decision: Decision, status: str) -> db.Assignment:
    """An assignment row not yet tied to a plan (``plan_id`` is set when stored)."""
    chosen = decision.chosen
    # A table model does not validate on init: plan_id may wait until the plan has an id.
    return db.Assignment(  # type: ignore[call-arg]
        device_id=decision.device_id,
        device_class=decision.device_class,
        model_id=chosen.option.model_id if chosen else None,
        refine=chosen.option.refine if chosen else False,
        strategy=chosen.option.strategy if chosen else None,
        score=chosen.psi if chosen else None,
        reasons=_reasons(decision),
        status=status,
    )


def plan_detail(session: Session, plan_id: int) -> dict[str, Any] | None:
    """A plan with its per-device assignments (status, command, reasons)."""
    plan = session.get(db.Plan, plan_id)
    if plan is None:
        return None
    rows = session.exec(
        select(db.Assignment)
        .where(db.Assignment.plan_id == plan_id)
        .order_by(db.Assignment.device_id)
    ).all()
    return _detail(plan, rows)


def _detail(plan: db.Plan, rows: Sequence[db.Assignment]) -> dict[str, Any]:
    return {
        "plan": plan.model_dump(mode="json"),
        "assignments": [{**r.model_dump(mode="json"), "plan_id": plan.id} for r in rows],
    }


def plan_history(session: Session, limit: int = 20) -> Sequence[db.Plan]:
    """Plans, newest first."""
    query = select(db.Plan).order_by(col(db.Plan.id).desc()).limit(limit)
    return session.exec(query).all()


def ranked_rows(scores: list[OptionScore]) -> list[dict[str, Any]]:
    """Rows best first; each says whether its B interval overlaps the next row's (order unsure)."""
    rows: list[dict[str, Any]] = []
    for score, below in zip(scores, [*scores[1:], None][: len(scores)], strict=True):
        overlaps = below is not None and score.b_interval.overlaps(below.b_interval)
        rows.append(score_row(score) | {"B_overlaps_next": overlaps})
    return rows


def score_row(s: OptionScore) -> dict[str, Any]:
    """One leaderboard row as plain JSON-ready data."""
    return {
        "model_id": s.option.model_id,
        "refine": s.option.refine,
        "strategy": s.option.strategy,
        "psi": s.psi,
        "psi_memory": s.psi_memory,
        "B": s.b,
        "I": s.i,
        "E": s.e,
        "C": s.c,
        "B_ci": [s.b_interval.low, s.b_interval.high],
        "I_ci": [s.i_interval.low, s.i_interval.high] if s.i_interval else None,
        "n_questions": s.n_questions,
        "memory_mb": s.memory_mb,
        "memory_measured": s.memory_measured,
        "latency_p95_s": s.latency.p95_s,
        "predicted": s.predicted,
        "quality_pooled": s.quality_pooled,
        "suites": list(s.suites),
    }
