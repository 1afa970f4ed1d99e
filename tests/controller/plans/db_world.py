"""A small fleet written to a real database: two classes, two models, measured runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from controller import crud
from controller.core.db import session_scope
from controller.models import Assignment, BenchmarkQuestion, BenchmarkRun, Device, Model, Plan
from shared.profiles import DeviceProfile
from tests.factories.planner import questions_for

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PCT = {"small": (70.0, 72.0), "big": (90.0, 95.0)}
RSS = {"m-small": 60.0, "m-big": 95.0}
SHAPES = {"m-small": {"n_embd": 64}, "m-big": {"n_embd": 512, "n_layers": 8, "n_ff": 1024}}


def profile(name: str, memory_mb: int) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        arch="x86_64",
        memory_budget_mb=memory_mb,
        latency_budget_s=60,
        disk_budget_mb=10_000,
        threads=1,
        memory_bandwidth_gbs=8,
        compute_gflops=40,
    )


def add_run(session, model_id: str, device_id: str, device_class: str, seq: int) -> None:
    run = BenchmarkRun(
        device_id=device_id,
        device_class=device_class,
        model_id=model_id,
        run_id=f"r{seq}",
        seq=seq,
        threads=1,
        n_ctx=2048,
        peak_rss_mb=RSS[model_id],
        decode_tok_s=20.0,
        prefill_tok_s=200.0,
        zero_shot_ttft_ms_p50=400,
        zero_shot_ttft_ms_p95=500,
        zero_shot_e2e_ms_p50=8000,
        zero_shot_e2e_ms_p95=9000,
        zero_shot_generated_tokens_mean=128,
        zero_shot_n=5,
        refined_ttft_ms_p50=400,
        refined_ttft_ms_p95=500,
        refined_e2e_ms_p50=20000,
        refined_e2e_ms_p95=23000,
        refined_generated_tokens_mean=128,
        refined_n=5,
        sent_at=AT,
    )
    session.add(run)
    session.flush()
    pct = PCT["small" if model_id == "m-small" else "big"]
    for q in questions_for(dict.fromkeys(("writing", "math", "coding"), pct), seed=seq):
        session.add(
            BenchmarkQuestion(
                run_pk=run.id,
                device_id=device_id,
                device_class=device_class,
                model_id=model_id,
                item_id=q.item_id,
                category=q.category,
                refined=q.refined,
                judge_score=q.judge_score,
                reference_judge_score=q.reference_judge_score,
                e2e_ms=q.e2e_ms,
                generated_tokens=q.generated_tokens,
                prompt_tokens_evaluated=q.prompt_tokens_evaluated,
                measured_at=AT,
            )
        )


def seed_world(engine: Engine, gguf: Callable[..., Path], *, current: str | None = None) -> None:
    """Classes small-box (75 MB) and big-box (6 GB); devices s1, s2 (small), b1 (big)."""
    with session_scope(engine) as session:
        crud.upsert_device_class(session, profile=profile("small-box", 75))
        crud.upsert_device_class(session, profile=profile("big-box", 6000))
        for i, model_id in enumerate(("m-small", "m-big")):
            path = gguf(model_id, **SHAPES[model_id])
            session.add(
                Model(
                    id=model_id,
                    name=model_id,
                    sha256=f"{i + 1:x}" * 64,
                    size_bytes=path.stat().st_size,
                    path=str(path),
                    filename=path.name,
                )
            )
        for device_id, cls in (("s1", "small-box"), ("s2", "small-box"), ("b1", "big-box")):
            session.add(
                Device(
                    id=device_id,
                    device_class=cls,
                    enrolled=True,
                    arch="x86_64",
                    status="online",
                    model_id=current,
                    refine=False,
                    last_heartbeat={"mem_available_mb": 5000.0, "uptime_s": 1, "load_1m": 0},
                )
            )
        session.flush()
        add_run(session, "m-small", "s1", "small-box", 1)
        add_run(session, "m-big", "b1", "big-box", 2)


def plan_row_counts(engine: Engine) -> tuple[int, int]:
    """How many plans and assignment rows are stored: a dry run must change neither."""
    with Session(engine) as session:
        plans = session.exec(select(func.count()).select_from(Plan)).one()
        rows = session.exec(select(func.count()).select_from(Assignment)).one()
    return plans, rows
