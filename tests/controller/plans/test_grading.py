"""Judge steps against a real database and Mosquitto: what is sent where, what comes back.

Bench results arrive through ingest as devices publish them; the grader's
commands are really published; the acks carrying grades come back through
ingest from the device they were sent to (and from one they were not).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller import models as db
from controller.core.db import session_scope
from controller.ingest.commands import CommandPublisher
from controller.ingest.service import IngestService
from controller.plans.grading import Grader
from controller.registry.suites import add_suite
from shared.messages import (
    AckBody,
    AckStatus,
    BenchBody,
    CategoryQuality,
    JudgeCommand,
    JudgeResult,
    ModelRef,
    QuestionResult,
    SuiteRef,
)
from shared.topics import Topics
from tests.controller.devices import FakeDevice, wait_until
from tests.controller.plans.db_world import seed_world
from tests.factories.messages import bench_body
from tests.support.broker import MosquittoBroker

ITEMS = [
    {"id": f"j{n}", "type": "judged", "category": "generic", "question": f"Name {n} fruits."}
    for n in (1, 2)
]
SUITE = ("\n".join(json.dumps(i) for i in [{"suite": "school"}, *ITEMS]) + "\n").encode()
SUITE_SHA = hashlib.sha256(SUITE).hexdigest()
JUDGE = ModelRef(model_id="m-big", sha256="ab" * 32)


def _answers(model_id: str, device_class: str, run_id: str) -> BenchBody:
    rows = [
        QuestionResult(
            item_id=item["id"], type="judged", category="generic", refined=False,
            answer=f"{model_id} says {n}", e2e_ms=100, generated_tokens=5,
            prompt_tokens_evaluated=9,
        )
        for n, item in enumerate(ITEMS)
    ]  # fmt: skip
    return bench_body(model_id, device_class).model_copy(
        update={
            "run_id": run_id,
            "suite": SuiteRef(name="school", sha256=SUITE_SHA),
            "questions": rows,
            "categories": [CategoryQuality(category="generic", refined=False, n=len(rows))],
        }
    )


def _judge_steps(engine: Engine) -> list[db.Command]:
    with Session(engine) as session:
        return list(session.exec(select(db.Command).where(col(db.Command.type) == "judge")).all())


def _judged(engine: Engine) -> list[db.BenchmarkQuestion]:
    with Session(engine) as session:
        return list(session.exec(select(db.BenchmarkQuestion)).all())


def test_a_small_class_answers_wait_for_the_reference_then_go_to_the_big_device(
    sqlite_engine: Engine,
    mosquitto: MosquittoBroker,
    ingest_factory: Callable[..., IngestService],
    tiny_gguf_factory: Callable[..., Path],
) -> None:
    seed_world(sqlite_engine, tiny_gguf_factory)  # small-box (75 MB): s1, s2; big-box: b1
    with session_scope(sqlite_engine) as session:
        session.exec(db.BenchmarkQuestion.__table__.delete())  # type: ignore[attr-defined]
        add_suite(session, "school", SUITE, created_by="test")
    service = ingest_factory(sqlite_engine, mosquitto, client_id="grading")
    grader = Grader(
        sqlite_engine,
        CommandPublisher(sqlite_engine, service.connection, topics=Topics()),
        model_url=lambda m: f"http://controller.test/models/{m}",
        judge_model_id=JUDGE.model_id,
        reference_model_id="m-big",
    )
    small, big = FakeDevice("s1", mosquitto.port), FakeDevice("b1", mosquitto.port)

    small.publish_body(_answers("m-small", "small-box", "run-s")).wait_for_publish(5)
    assert wait_until(lambda: len(_judged(sqlite_engine)) == 2)
    assert grader.run() == []  # no reference answer yet: grading now could not count toward B

    big.publish_body(_answers("m-big", "big-box", "run-b")).wait_for_publish(5)
    assert wait_until(lambda: len(_judged(sqlite_engine)) == 4)
    sent = grader.run()
    assert [(s.device_id, s.tasks) for s in sent] == [("b1", 8)]  # the judge fits big-box only
    assert grader.run() == []  # in flight: not sent twice
    (step,) = _judge_steps(sqlite_engine)
    command = JudgeCommand.model_validate(step.body)
    assert command.source is not None and command.source.model_id == "m-big"
    targets = [(t.target, t.answer) for t in command.tasks]
    assert targets[:2] == [("reference", "m-big says 0"), ("answer", "m-small says 0")]
    assert {t.question for t in command.tasks} == {i["question"] for i in ITEMS}

    scores: list[float | None] = [float(n % 9 + 1) for n in range(len(command.tasks))]
    scores[1] = None  # an unreadable rating: missing, never 0
    grades = JudgeResult(judge=JUDGE, scores=scores).model_dump(mode="json")
    small.publish_body(AckBody(command_id=step.id, status=AckStatus.OK, detail=grades))
    one_short = {**grades, "scores": [5.0]}
    big.publish_body(AckBody(command_id=step.id, status=AckStatus.OK, detail=one_short))
    assert wait_until(lambda: service.stats.handled >= 4)
    assert all(row.judge_model_id is None for row in _judged(sqlite_engine))  # neither counted

    big.publish_body(AckBody(command_id=step.id, status=AckStatus.OK, detail=grades))
    assert wait_until(lambda: all(r.judge_model_id for r in _judged(sqlite_engine)))
    rows = {(r.device_id, r.item_id): r for r in _judged(sqlite_engine)}
    first = rows[("s1", "j1")]
    assert (first.judge_score, first.reference_judge_score) == (None, 1.0)
    assert first.judge_sha256 == JUDGE.sha256
    second = rows[("s1", "j2")]
    assert (second.reference_judge_score, second.judge_score) == (3.0, 4.0)
    assert grader.run() == []  # everything graded, the missing rating included
    with Session(sqlite_engine) as session:
        result = session.exec(
            select(db.BenchmarkResult).where(col(db.BenchmarkResult.device_id) == "s1")
        ).one()
    # j1's rating is missing; j2 scored 4 against the reference's 3
    assert (result.judge_mean, result.judge_missing) == (4.0, 1)
    assert result.pct_of_reference is not None and round(result.pct_of_reference, 1) == 133.3
