"""Benchmark results: per-category rows, and means per (model, class, suite, category, mode)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func
from sqlalchemy import select as sql_select
from sqlmodel import col, select

from controller.api.deps import SessionDep
from controller.api.pagination import Page, PageDep, paginate
from controller.models import BenchmarkResult, BenchmarkResultPublic, BenchmarkRun
from shared.strategies import StrategyName

router = APIRouter(prefix="/bench", tags=["benchmarks"])

ModelFilter = Annotated[str | None, Query(max_length=128)]
ClassFilter = Annotated[str | None, Query(max_length=64)]
CategoryFilter = Annotated[str | None, Query(max_length=40)]


class BenchSummary(BaseModel):
    """Means over every run of one model on one class, in one category and mode."""

    model_id: str
    device_class: str
    suite: str | None = Field(description="the suite measured; null: the agent's built-in set")
    category: str
    strategy: str = Field(description="the test-time strategy (direct, refine:1, vote:5...)")
    runs: int
    questions: int = Field(description="judged questions over those runs (the n of a mean)")
    judge_mean: float | None
    pct_of_reference: float | None
    exact_accuracy: float | None
    decode_tok_s: float | None
    e2e_ms_p50: float | None
    peak_rss_mb: float | None


StrategyFilter = Annotated[StrategyName | None, Query(description="e.g. direct, vote:5")]


def _filters(
    model_id: str | None,
    device_class: str | None,
    category: str | None,
    refined: bool | None,
    strategy: str | None = None,
) -> list[ColumnElement[bool]]:
    pairs = (
        (BenchmarkResult.model_id, model_id),
        (BenchmarkResult.device_class, device_class),
        (BenchmarkResult.category, category),
        (BenchmarkResult.refined, refined),
        (BenchmarkResult.strategy, strategy),
    )
    return [col(column) == value for column, value in pairs if value is not None]


@router.get("/results", response_model=Page[BenchmarkResultPublic])
def list_results(
    session: SessionDep,
    page: PageDep,
    model_id: ModelFilter = None,
    device_class: ClassFilter = None,
    category: CategoryFilter = None,
    refined: bool | None = None,
    strategy: StrategyFilter = None,
    device_id: Annotated[str | None, Query(max_length=63)] = None,
) -> Page[Any]:
    """Per-category results, newest first, by model, class, category, strategy or device."""
    filters = _filters(model_id, device_class, category, refined, strategy)
    if device_id is not None:
        filters.append(col(BenchmarkResult.device_id) == device_id)
    stmt = select(BenchmarkResult).where(*filters)
    stmt = stmt.order_by(col(BenchmarkResult.measured_at).desc(), col(BenchmarkResult.id).desc())
    rows, total = paginate(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.get("/summary", response_model=list[BenchSummary])
def summary(
    session: SessionDep,
    model_id: ModelFilter = None,
    device_class: ClassFilter = None,
    category: CategoryFilter = None,
    refined: bool | None = None,
    strategy: StrategyFilter = None,
) -> list[BenchSummary]:
    """Means per (model, class, suite, category, strategy), the inputs of the PeRFICS score."""
    r = BenchmarkResult
    suite = col(BenchmarkRun.suite_name)
    keys = (col(r.model_id), col(r.device_class), suite, col(r.category), col(r.strategy))
    means = [func.avg(col(c)) for c in (r.judge_mean, r.pct_of_reference, r.exact_accuracy,
                                         r.decode_tok_s, r.e2e_ms_p50, r.peak_rss_mb)]  # fmt: skip
    stmt = (
        sql_select(*keys, func.count(), func.sum(col(r.n)), *means)
        .join(BenchmarkRun, col(BenchmarkRun.id) == col(r.run_pk))
        .where(*_filters(model_id, device_class, category, refined, strategy))
        .group_by(*keys)
        .order_by(*keys)
    )
    names = list(BenchSummary.model_fields)
    return [BenchSummary(**dict(zip(names, row, strict=True))) for row in session.execute(stmt)]
