"""The ``judge`` command: grade answers other devices generated, with this device's judge.

The controller sends it to the device best able to hold the judge model, so
a class too small for the judge still has its answers graded. The judge runs
in a spawned process (as a benchmark does) with serving paused; the ack's
detail is a :class:`shared.messages.JudgeResult`, one score per task in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agent.bench.command import locate_model, run_in_child
from agent.bench.judge import Judge
from agent.bench.runner import model_ref
from agent.inference.runtime import ModelRuntime
from agent.inference.types import InferenceError
from agent.link.commands import CommandFailed
from agent.models.serving import ModelHost
from agent.models.store import ModelStore
from shared.messages import GradeTask, JudgeCommand, JudgeResult
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradingJob:
    """The judge's file, how to run it on this device's class, and the answers to grade."""

    judge_path: Path
    judge_model_id: str
    tasks: tuple[GradeTask, ...]
    threads: int = 1
    n_ctx: int = 2048
    kv_cache_type: str = "f16"
    memory_budget_mb: float | None = None
    max_tokens: int = 128
    mode: str = "auto"


def grade(job: GradingJob) -> JudgeResult:
    """Load the judge and grade every task; a reply without a rating is None (missing)."""
    runtime = ModelRuntime(
        job.judge_path,
        threads=job.threads,
        n_ctx=job.n_ctx,
        kv_cache_type=job.kv_cache_type,
        memory_budget_mb=job.memory_budget_mb,
        model_id=job.judge_model_id,
    )
    try:
        judge = Judge(runtime, max_tokens=job.max_tokens, mode=job.mode)
        scores = [judge.grade(t.question, t.answer, t.reference).score for t in job.tasks]
        ref = model_ref(runtime)
    finally:
        runtime.close()
    return JudgeResult(judge=ref, scores=scores)


def run_judge_command(
    command: JudgeCommand,
    *,
    store: ModelStore,
    host: ModelHost,
    profile: DeviceProfile,
    protected: set[str],
    on_download: Callable[[], None] | None = None,
    stopping: threading.Event | None = None,
) -> dict[str, Any]:
    """Fetch the judge if missing, grade with serving paused, return the ack detail."""
    path = locate_model(
        command.judge_model_id,
        command.source,
        store=store,
        host=host,
        protected=protected,
        on_download=on_download,
        memory_budget_mb=profile.memory_budget_mb,
    )
    job = GradingJob(
        judge_path=path,
        judge_model_id=command.judge_model_id,
        tasks=tuple(command.tasks),
        threads=profile.threads,
        n_ctx=profile.n_ctx,
        kv_cache_type=profile.kv_cache_type,
        memory_budget_mb=float(profile.memory_budget_mb),
    )
    what = f"the judge process of {command.judge_model_id}"
    with host.paused():
        try:
            payload = run_in_child(_grade_in_child, job, what=what, stopping=stopping)
        except InferenceError as exc:
            raise CommandFailed(f"judging with {command.judge_model_id} failed: {exc}") from None
    result = JudgeResult.model_validate_json(payload)
    graded = sum(score is not None for score in result.scores)
    logger.info("judge step %s: %d of %d graded", command.command_id, graded, len(result.scores))
    return result.model_dump(mode="json")


def _grade_in_child(job: GradingJob, sender: Connection) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = grade(job)
    except InferenceError as exc:
        sender.send(("failed", exc))
        return
    sender.send(("ok", result.model_dump_json()))
