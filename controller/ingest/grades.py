"""Store the grades a judge step sends back (the ``ok`` ack of a ``judge`` command).

Grades are placed by the controller's own copy of the command, position by
position, and only for the device the command was sent to: a device can
grade what it was asked to grade, nothing else. Each graded item records the
judge's model id and sha256, including items whose rating was unreadable
(missing, never 0), so they are not sent again. The run's per-category judged
rows (``/bench/results``, ``/bench/summary``) are recomputed from its items with
``shared.quality``, as the device computes them.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy import Connection, Table, select, update

from controller.models import BenchmarkQuestion, BenchmarkResult, Command
from shared.messages import (
    AckBody,
    AckStatus,
    Envelope,
    JudgeCommand,
    JudgeResult,
    QuestionResult,
)
from shared.quality import category_rows

logger = logging.getLogger(__name__)
COMMAND: Table = Command.__table__  # type: ignore[attr-defined]
QUESTION: Table = BenchmarkQuestion.__table__  # type: ignore[attr-defined]
RESULT: Table = BenchmarkResult.__table__  # type: ignore[attr-defined]


def apply_grades(conn: Connection, acks: list[Envelope[AckBody]]) -> int:
    """Store the scores of every finished judge step among ``acks``; return how many."""
    stored = 0
    for ack in acks:
        if ack.body.status is not AckStatus.OK or ack.body.detail.get("type") != "judge":
            continue
        command = _judge_command(conn, ack)
        if command is None:
            continue
        try:
            result = JudgeResult.model_validate(ack.body.detail)
        except ValidationError as exc:
            logger.warning("judge step %s: unreadable grades: %s", command.command_id, exc)
            continue
        if len(result.scores) != len(command.tasks):
            logger.warning(
                "judge step %s: %d grades for %d tasks; none stored",
                command.command_id, len(result.scores), len(command.tasks),
            )  # fmt: skip
            continue
        graded_by = {"judge_model_id": result.judge.model_id, "judge_sha256": result.judge.sha256}
        for task, score in zip(command.tasks, result.scores, strict=True):
            if task.target == "answer":
                stmt = (
                    update(QUESTION)
                    .where(QUESTION.c.id == task.row_id, QUESTION.c.run_pk == task.run_pk)
                    .values(judge_score=score, **graded_by)
                )
            else:
                stmt = (
                    update(QUESTION)
                    .where(QUESTION.c.run_pk == task.run_pk, QUESTION.c.item_id == task.item_id)
                    .values(reference_judge_score=score)
                )
            conn.execute(stmt)
        for run_pk in sorted({task.run_pk for task in command.tasks}):
            _refresh_categories(conn, run_pk)
        stored += len(result.scores)
    return stored


def _refresh_categories(conn: Connection, run_pk: int) -> None:
    """Recompute a run's judged per-category rows from its items, now graded."""
    items = [
        QuestionResult.model_validate(dict(row._mapping))
        for row in conn.execute(select(QUESTION).where(QUESTION.c.run_pk == run_pk))
    ]
    for category in category_rows(items):
        if category.type != "judged":
            continue
        conn.execute(
            update(RESULT)
            .where(RESULT.c.run_pk == run_pk, RESULT.c.type == "judged")
            .where(RESULT.c.category == category.category, RESULT.c.refined == category.refined)
            .values(
                judge_mean=category.judge_mean,
                judge_missing=category.judge_missing,
                pct_of_reference=category.pct_of_reference,
            )
        )


def _judge_command(conn: Connection, ack: Envelope[AckBody]) -> JudgeCommand | None:
    """The judge command this ack answers, if it was sent to the acking device."""
    body = conn.execute(
        select(COMMAND.c.body).where(
            COMMAND.c.id == ack.body.command_id,
            COMMAND.c.device_id == ack.device_id,
            COMMAND.c.type == "judge",
        )
    ).scalar()
    if body is None:
        logger.warning("grades from %s for no judge step of it", ack.device_id)
        return None
    return JudgeCommand.model_validate(body)
