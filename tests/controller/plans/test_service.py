from sqlalchemy import Engine
from sqlmodel import Session

from controller import models as db
from controller.core.db import session_scope
from controller.planner.fleet import FleetConstraints
from controller.planner.types import PlannerSettings
from controller.plans.inputs import current_scores
from controller.plans.service import (
    draft_plan,
    dry_run_plan,
    plan_detail,
    plan_history,
    ranked_rows,
    score_row,
)
from tests.controller.plans.db_world import plan_row_counts, seed_world


def test_draft_assigns_the_best_feasible_model_per_device_with_reasons(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    plan_id = draft_plan(engine, created_by="op")
    with Session(engine) as session:
        detail = plan_detail(session, plan_id)
    assert detail is not None and detail["plan"]["status"] == "draft"
    rows = {a["device_id"]: a for a in detail["assignments"]}
    assert {d: (a["model_id"], a["status"]) for d, a in rows.items()} == {
        "b1": ("m-big", "change"),
        "s1": ("m-small", "change"),
        "s2": ("m-small", "change"),
    }
    assert rows["b1"]["refine"] is True  # +5 points of quality for 2.5x of a 60 s budget
    assert any(
        r.startswith("m-big: needs 0.09 GB (estimated 84 MB + 10% margin), budget 0.07")
        for r in rows["s1"]["reasons"]
    )
    assert rows["s1"]["reasons"][1].startswith("runner-up: m-small")
    assert "3 to change" in detail["plan"]["summary"]


def test_a_new_draft_supersedes_the_old_one_and_history_lists_both(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    first = draft_plan(engine)
    second = draft_plan(engine)
    with Session(engine) as session:
        assert [p.id for p in plan_history(session)] == [second, first]
        assert session.get(db.Plan, first).status == "superseded"


def test_a_dry_run_stores_nothing_and_matches_the_draft_it_would_store(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    stored = draft_plan(engine, created_by="op")
    before = plan_row_counts(engine)
    dry = dry_run_plan(engine, created_by="viewer")
    assert plan_row_counts(engine) == before == (1, 3)
    with Session(engine) as session:
        assert session.get(db.Plan, stored).status == "draft"  # not superseded by a dry run
        detail = plan_detail(session, stored)
    assert dry["plan"]["id"] is None and dry["plan"]["status"] == "dry-run"
    assert dry["plan"]["created_by"] == "viewer"
    assert set(dry) == set(detail) and set(dry["plan"]) == set(detail["plan"])
    for key in ("summary", "reasons", "params"):
        assert dry["plan"][key] == detail["plan"][key]

    def without_ids(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("id", "plan_id")} for r in rows]

    assert [set(r) for r in dry["assignments"]] == [set(r) for r in detail["assignments"]]
    assert {(r["id"], r["plan_id"]) for r in dry["assignments"]} == {(None, None)}
    assert without_ids(dry["assignments"]) == without_ids(detail["assignments"])


def test_pins_and_exclusions_from_the_database_are_obeyed(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    with session_scope(engine) as session:
        session.add(db.Pin(kind="pin", device_id="b1", model_id="m-small", refine=False))
        session.add(db.Pin(kind="exclude", device_id="s2", model_id="m-small"))
        # a pin naming a strategy: it wins over the flag an older client also sent
        session.add(
            db.Pin(
                kind="pin", device_id="s1", model_id="m-small", refine=False, strategy="refine:1"
            )
        )
    with Session(engine) as session:
        rows = {a["device_id"]: a for a in plan_detail(session, draft_plan(engine))["assignments"]}
    assert (rows["b1"]["model_id"], rows["b1"]["strategy"]) == ("m-small", "direct")
    assert (rows["s1"]["model_id"], rows["s1"]["strategy"]) == ("m-small", "refine:1")
    assert rows["s2"]["model_id"] is None and rows["s2"]["status"] == "unplanned"
    assert any("excluded by the operator" in r for r in rows["s2"]["reasons"])


def test_fleet_constraint_plan_is_stored_with_the_solver_status(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    plan_id = draft_plan(engine, constraints=FleetConstraints(min_devices_per_model={"m-small": 3}))
    with Session(engine) as session:
        plan = session.get(db.Plan, plan_id)
        assert plan.reasons == ["optimal"]
        rows = plan_detail(session, plan_id)["assignments"]
    assert [r["model_id"] for r in rows] == ["m-small"] * 3
    assert [r["reasons"][0] for r in rows if r["device_id"] == "b1"] == ["fleet constraint"]


def test_leaderboard_reports_terms_intervals_and_flags(engine: Engine, tiny_gguf_factory) -> None:
    seed_world(engine, tiny_gguf_factory)
    with Session(engine) as session:
        scores = current_scores(session, PlannerSettings())
    board = {cls: [score_row(s) for s in rows] for cls, rows in scores.items()}
    big = board["big-box"]
    assert [r["psi"] for r in big] == sorted((r["psi"] for r in big), reverse=True)
    row = next(r for r in big if r["model_id"] == "m-big" and not r["refine"])
    assert row["memory_measured"] and not row["predicted"] and row["n_questions"] == 18
    assert row["B_ci"][0] < row["B"] < row["B_ci"][1]
    small_on_big = next(r for r in big if r["model_id"] == "m-small" and not r["refine"])
    assert small_on_big["predicted"] and small_on_big["quality_pooled"]


def test_ranked_rows_flag_overlap_with_the_next_row_and_take_an_empty_class(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    with Session(engine) as session:
        big = current_scores(session, PlannerSettings())["big-box"]
    rows = ranked_rows(big)
    assert len(rows) == len(big) and rows[-1]["B_overlaps_next"] is False
    assert ranked_rows([]) == []  # a class with no scored option (found by schemathesis)


def test_a_device_with_a_failed_engine_check_is_unplanned_with_the_reason(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    why = "the engine check died: SIGSEGV (invalid memory access inside llama.cpp); fix: ..."
    with session_scope(engine) as session:
        session.get(db.Device, "s2").engine = {"ok": False, "crash": "SIGSEGV", "reason": why}
    plan_id = draft_plan(engine, created_by="op")
    with Session(engine) as session:
        detail = plan_detail(session, plan_id)
    assert detail is not None
    rows = {a["device_id"]: a for a in detail["assignments"]}
    assert (rows["s2"]["model_id"], rows["s2"]["status"]) == (None, "unplanned")
    assert rows["s2"]["reasons"][0] == f"engine cannot run models: {why}"
    assert rows["s1"]["model_id"] == "m-small"  # its class-mate is planned as before
