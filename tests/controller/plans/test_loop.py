from sqlalchemy import Engine
from sqlmodel import Session, select

from controller import models as db
from controller.core.db import session_scope
from controller.planner.triggers import ReplanTrigger
from controller.plans.grading import Grader, JudgeStepSent
from controller.plans.loop import PlannerLoop
from tests.controller.plans.db_world import add_run, seed_world


def test_joins_offline_devices_and_new_measurements_trigger_one_debounced_replan(
    engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(engine, tiny_gguf_factory)
    loop = PlannerLoop(engine, None, trigger=ReplanTrigger(debounce_s=30, max_delay_s=300))
    assert loop.step(now=0) is None  # first look: the baseline, nothing to react to
    with session_scope(engine) as session:
        session.add(db.Device(id="s3", device_class="small-box", status="online"))
        session.get(db.Device, "b1").status = "offline"
    assert loop.step(now=1) is None  # noted, but debounced
    with session_scope(engine) as session:
        add_run(session, "m-small", "b1", "big-box", 7)  # m-small now measured on big-box
    assert loop.step(now=10) is None
    reasons = loop.step(now=41)
    assert reasons is not None
    assert reasons[:2] == ["device b1 went offline", "device s3 joined"]  # sorted by id
    assert any(r.startswith("big-box: m-small") for r in reasons[2:])
    assert loop.step(now=100) is None  # quiet again
    with Session(engine) as session:
        plans = session.exec(select(db.Plan)).all()
    assert [p.id for p in plans] == loop.drafts and plans[0].created_by == "planner-loop"
    assignments = {a.device_id for a in session_assignments(engine, loop.drafts[0])}
    assert "s3" in assignments


def session_assignments(engine: Engine, plan_id: int):
    with Session(engine) as session:
        return session.exec(select(db.Assignment).where(db.Assignment.plan_id == plan_id)).all()


class CountingGrader(Grader):
    """Counts the loop's grading passes (the judge steps themselves: test_grading.py)."""

    def __init__(self) -> None:  # no engine or sender: run() is replaced
        self.passes: list[str | None] = []

    def run(self, *, limit: int = 4, created_by: str | None = None) -> list[JudgeStepSent]:
        self.passes.append(created_by)
        return []


def test_the_loop_looks_for_ungraded_answers_every_grade_interval(
    sqlite_engine: Engine, tiny_gguf_factory
) -> None:
    seed_world(sqlite_engine, tiny_gguf_factory)
    grader = CountingGrader()
    loop = PlannerLoop(sqlite_engine, None, grader=grader, grade_interval_s=10)
    for now in (0, 5, 9.9, 10, 12, 25):
        loop.step(now=now)
    assert grader.passes == ["planner-loop"] * 3  # at 0, 10 and 25
