"""Judge steps: judged answers a device could not grade itself, sent to a device that can.

A bench without a judge (a class too small to hold it) stores its judged
answers ungraded. Each pass finds them, pairs each item with the reference
model's zero-shot answer on the same suite item (so the same judge grades
both sides of ``q``; an item waits until that answer is stored), and sends
them in bounded ``judge`` commands to the device :func:`choose_judge_site`
picks. The grades come back in the command's ack (``controller.ingest.grades``).
Items of a step still running, or of one that failed less than
``retry_after_s`` ago, are not sent again.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controller import models as db
from controller.ingest.commands import CommandSender
from controller.models import utcnow
from controller.planner.judging import JudgeSite, choose_judge_site
from controller.planner.types import PlannerSettings
from controller.plans.inputs import load_inputs
from controller.plans.profiler import UNFINISHED as BUSY
from controller.registry.sources import registry_sources
from controller.registry.suites import suite_by_sha256
from shared.messages import MAX_GRADE_TASKS, GradeTask, JudgeCommand, ModelSource
from shared.suites.items import JudgedItem

logger = logging.getLogger(__name__)
MAX_PENDING_ROWS = 2000
"""Ungraded answers read per pass; the rest wait for the next one."""


@dataclass(frozen=True)
class JudgeStepSent:
    """One judge command sent: where, how many answers, and why there."""

    command_id: str
    device_id: str
    tasks: int
    status: str
    reason: str


class Grader:
    """Sends judge steps for ungraded judged answers (the planner loop calls :meth:`run`)."""

    def __init__(
        self,
        engine: Engine,
        commands: CommandSender,
        *,
        model_url: Callable[[str], str],
        judge_model_id: str | None,
        reference_model_id: str | None = None,
        timeout_s: float = 6 * 3600.0,
        retry_after_s: float = 600.0,
        settings: PlannerSettings | None = None,
        fence: Callable[[Session], None] | None = None,
    ) -> None:
        self.engine, self.commands, self.model_url = engine, commands, model_url
        self.fence = fence  # the planner lease's check, when steps run under it
        self.judge_model_id, self.reference_model_id = judge_model_id, reference_model_id
        self.timeout_s, self.retry_after_s = timeout_s, retry_after_s
        self.settings = settings or PlannerSettings()

    def run(self, *, limit: int = 4, created_by: str | None = None) -> list[JudgeStepSent]:
        """Send up to ``limit`` judge commands; nothing when all is graded or no device fits."""
        if self.judge_model_id is None:
            return []
        with Session(self.engine) as session:
            busy, taken = self._in_flight(session)
            tasks = [t for t in self.pending(session) if _key(t) not in taken]
            if not tasks:
                return []
            inputs = load_inputs(session)
            sources = registry_sources(session, [self.judge_model_id], self.model_url)
        judge = inputs.models.get(self.judge_model_id)
        if judge is None:
            logger.error("judge %s is not in the model registry", self.judge_model_id)
            return []
        site = choose_judge_site(
            judge, inputs.devices, inputs.profiles, inputs.runs, self.settings, busy=busy
        )
        if site is None:
            logger.info("%d answer(s) wait for an idle device that can hold the judge", len(tasks))
            return []
        chunks = [tasks[i : i + MAX_GRADE_TASKS] for i in range(0, len(tasks), MAX_GRADE_TASKS)]
        source = sources[0] if sources else None
        return [self._send(site, chunk, source, created_by) for chunk in chunks[:limit]]

    def pending(self, session: Session) -> list[GradeTask]:
        """Ungraded judged answers with their question, and the reference answer to grade beside.

        Answers from a run whose suite the controller cannot read are left out (the
        judge needs the question), as are items still waiting for a reference answer.
        """
        q, run = db.BenchmarkQuestion, db.BenchmarkRun
        rows = session.exec(
            select(q, run.suite_sha256)
            .join(run, col(run.id) == col(q.run_pk))
            .where(col(q.type) == "judged", col(q.answer).is_not(None))
            .where(col(q.judge_score).is_(None), col(q.judge_model_id).is_(None))
            .where(col(run.suite_sha256).is_not(None))
            .order_by(col(q.id))
            .limit(MAX_PENDING_ROWS)
        ).all()
        by_suite: dict[str, list[db.BenchmarkQuestion]] = defaultdict(list)
        for row, sha256 in rows:
            by_suite[str(sha256)].append(row)
        tasks: list[GradeTask] = []
        for sha256, answers in by_suite.items():
            suite = suite_by_sha256(session, sha256)
            if suite is None:
                continue
            items = {i.id: i for i in suite.items if isinstance(i, JudgedItem)}
            references = self._reference_answers(session, sha256)
            tasks += _tasks(answers, items, references, wait=self.reference_model_id is not None)
        return tasks

    def _reference_answers(self, session: Session, sha256: str) -> dict[str, str]:
        """The reference model's first stored zero-shot answer per item of this suite version."""
        if self.reference_model_id is None:
            return {}
        q, run = db.BenchmarkQuestion, db.BenchmarkRun
        rows = session.exec(
            select(q.item_id, q.answer)
            .join(run, col(run.id) == col(q.run_pk))
            .where(col(run.model_id) == self.reference_model_id, col(run.suite_sha256) == sha256)
            .where(col(q.type) == "judged", col(q.refined).is_(False), col(q.answer).is_not(None))
            .order_by(col(q.id))
        ).all()
        out: dict[str, str] = {}
        for item_id, answer in rows:
            out.setdefault(item_id, str(answer))
        return out

    def _in_flight(self, session: Session) -> tuple[set[str], set[tuple[object, ...]]]:
        """Devices with a long command unanswered, and what running or failed judge steps hold."""
        now = utcnow()
        busy_rows = session.exec(
            select(db.Command)
            .where(col(db.Command.type).in_(("bench", "judge", "assign")))
            .where(col(db.Command.status).in_(BUSY))
            .where(col(db.Command.created_at) >= now - timedelta(seconds=self.timeout_s))
        ).all()
        failed_rows = session.exec(
            select(db.Command)
            .where(col(db.Command.type) == "judge")
            .where(col(db.Command.status).not_in((*BUSY, db.CommandStatus.OK.value)))
            .where(col(db.Command.created_at) >= now - timedelta(seconds=self.retry_after_s))
        ).all()
        taken = {
            _key(task)
            for row in [*busy_rows, *failed_rows]
            if row.type == "judge"
            for task in JudgeCommand.model_validate(row.body).tasks
        }
        return {row.device_id for row in busy_rows}, taken

    def _send(
        self,
        site: JudgeSite,
        tasks: list[GradeTask],
        source: ModelSource | None,
        created_by: str | None,
    ) -> JudgeStepSent:
        command = JudgeCommand(
            command_id=f"judge-{uuid.uuid4().hex[:12]}",
            judge_model_id=str(self.judge_model_id),
            source=source,
            tasks=tasks,
        )
        try:
            status = self.commands.send(
                device_id=site.device_id, command=command, created_by=created_by,
                fence=self.fence,
            ).status  # fmt: skip
        except (LookupError, ValueError) as exc:
            status = f"refused: {exc}"
        logger.info("judge step %s, %d answer(s): %s", command.command_id, len(tasks), site.reason)
        return JudgeStepSent(command.command_id, site.device_id, len(tasks), status, site.reason)


def _key(task: GradeTask) -> tuple[object, ...]:
    return (task.run_pk, task.item_id, task.target, task.row_id)


def _tasks(
    answers: Iterable[db.BenchmarkQuestion],
    items: dict[str, JudgedItem],
    references: dict[str, str],
    *,
    wait: bool,
) -> list[GradeTask]:
    """Each answer's task, and one reference task per (run, item) before its answers."""
    out: list[GradeTask] = []
    seen: set[tuple[int, str]] = set()
    for row in answers:
        item = items.get(row.item_id)
        reference_answer = references.get(row.item_id)
        if item is None or (wait and reference_answer is None):
            continue
        common = {"run_pk": row.run_pk, "item_id": row.item_id, "question": item.question}
        common["reference"] = item.reference
        if reference_answer is not None and (row.run_pk, row.item_id) not in seen:
            seen.add((row.run_pk, row.item_id))
            out.append(GradeTask(target="reference", answer=reference_answer, **common))
        out.append(GradeTask(target="answer", row_id=row.id, answer=row.answer or "", **common))
    return out
