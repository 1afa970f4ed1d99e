"""The benchmark runner: throughput, latency, memory and per-category quality of one model.

Its result is exactly the ``bench`` message body (:class:`shared.messages.BenchBody`),
so the agent daemon publishes it unchanged. Order matters for honest numbers:
the candidate model runs alone first (peak RSS and CPU time are taken then),
and only afterwards are the reference and the judge models loaded.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.bench import process, quality, throughput
from agent.bench.evalset import Question, check_exact
from agent.bench.judge import Judge
from agent.inference.refine import RefinementResult, StageLimits, answer
from agent.inference.runtime import Generation, InferenceError, ModelRuntime
from agent.models.store import sha256_file
from agent.probe import load_1m
from shared.messages import BenchBody, ModelRef, QuestionResult
from shared.profiles import DeviceProfile

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``."""
_Cost = Generation | RefinementResult
"""Either carries the time and tokens an answer cost."""


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark and how."""

    model_path: Path
    questions: Sequence[Question] = ()
    judge_path: Path | None = None
    reference_path: Path | None = None
    refine: bool = True
    threads: int = 1
    n_ctx: int = 2048
    kv_cache_type: str = "f16"
    memory_budget_mb: float | None = None
    device_class: str = "unknown"
    pp_tokens: int = 128
    tg_tokens: int = 64
    repetitions: int = 3
    limits: StageLimits = field(default_factory=StageLimits)
    judge_max_tokens: int = 128
    judge_mode: str = "auto"
    command_id: str | None = None
    model_id: str | None = None
    judge_model_id: str | None = None
    reference_model_id: str | None = None
    """Ids reported for the judge and reference (default: from the file name, which in the
    device's store is a hash)."""

    @classmethod
    def from_profile(cls, profile: DeviceProfile, **options: Any) -> BenchConfig:
        """A config that runs the model as a device of ``profile``'s class would; options win."""
        settings: dict[str, Any] = {
            "threads": profile.threads,
            "n_ctx": profile.n_ctx,
            "kv_cache_type": profile.kv_cache_type,
            "memory_budget_mb": float(profile.memory_budget_mb),
            "device_class": profile.name,
        }
        return cls(**{**settings, **options})


@dataclass
class _Answered:
    question: Question
    result: RefinementResult
    judge_y0: float | None = None
    judge_y1: float | None = None
    reference_answer: str | None = None
    reference_score: float | None = None


def model_ref(runtime: ModelRuntime) -> ModelRef:
    """Identify a loaded model for the bench message."""
    info = runtime.info
    return ModelRef(
        model_id=runtime.model_id,
        sha256=sha256_file(info.path),
        architecture=info.architecture,
        quantization=info.quantization,
        parameters=info.parameters,
        file_size_bytes=info.file_size,
        instruction_tuned=runtime.instruction_tuned,
    )


def _load(config: BenchConfig, path: Path, model_id: str | None = None) -> ModelRuntime:
    return ModelRuntime(
        path,
        threads=config.threads,
        n_ctx=config.n_ctx,
        kv_cache_type=config.kv_cache_type,
        memory_budget_mb=config.memory_budget_mb,
        model_id=model_id,
    )


def _answer_all(
    runtime: ModelRuntime, config: BenchConfig, refine: bool, phase: str, progress: Progress
) -> list[RefinementResult | None]:
    """Answer every question; one that cannot be answered (too long, say) is None, not fatal."""
    results: list[RefinementResult | None] = []
    for index, question in enumerate(config.questions):
        progress(phase, index, len(config.questions))
        try:
            results.append(answer(runtime, question.prompt, refine=refine, limits=config.limits))
        except InferenceError as exc:
            logger.warning("%s: question %s skipped: %s", phase, question.question_id, exc)
            results.append(None)
    progress(phase, len(config.questions), len(config.questions))
    return results


def sweep_threads(
    config: BenchConfig, max_threads: int, progress: Progress | None = None
) -> list[tuple[int, throughput.Throughput]]:
    """pp/tg throughput for 1..``max_threads`` threads; the profile can adopt the fastest."""
    report = progress or (lambda phase, done, total: None)
    rows = []
    for threads in range(1, max_threads + 1):
        report("thread sweep", threads - 1, max_threads)
        runtime = _load(replace(config, threads=threads), config.model_path, config.model_id)
        try:
            speed = throughput.measure(
                runtime,
                pp_tokens=config.pp_tokens,
                tg_tokens=config.tg_tokens,
                repetitions=config.repetitions,
            )
        finally:
            runtime.close()
        rows.append((threads, speed))
    report("thread sweep", max_threads, max_threads)
    return rows


def fastest(rows: Sequence[tuple[int, throughput.Throughput]]) -> int:
    """The thread count with the highest mean decode speed (what answers wait on)."""
    return max(rows, key=lambda row: row[1].decode_tok_s.mean)[0]


@dataclass
class _CandidateRun:
    """What the candidate model measured while it ran alone."""

    model: ModelRef
    speed: throughput.Throughput
    answered: list[_Answered]
    cpu_s: float
    utilisation: float
    peak_rss_mb: float
    load_before: float
    load_after: float


def _run_candidate(config: BenchConfig, report: Progress) -> _CandidateRun:
    load_before = load_1m()
    meter = process.CpuMeter().start()
    runtime = _load(config, config.model_path, config.model_id)
    try:
        report("throughput", 0, 1)
        speed = throughput.measure(
            runtime,
            pp_tokens=config.pp_tokens,
            tg_tokens=config.tg_tokens,
            repetitions=config.repetitions,
        )
        report("throughput", 1, 1)
        results = _answer_all(runtime, config, config.refine, "answers", report)
        meter.stop()
        model = model_ref(runtime)
    finally:
        runtime.close()
    answered = [
        _Answered(q, r) for q, r in zip(config.questions, results, strict=True) if r is not None
    ]
    return _CandidateRun(
        model=model,
        speed=speed,
        answered=answered,
        cpu_s=meter.cpu_s,
        utilisation=meter.utilisation(config.threads),
        peak_rss_mb=process.peak_rss_mb(),
        load_before=load_before,
        load_after=load_1m(),
    )


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchBody:
    """Benchmark one model; raise ``InferenceError`` if it cannot be loaded."""
    report = progress or (lambda phase, done, total: None)
    started_at = datetime.now(UTC)
    run = _run_candidate(config, report)
    reference = _run_reference(config, run.answered, report)
    judge = _run_judge(config, run.answered, report)
    rows = _question_results(run.answered, config.refine)
    ref_means = quality.reference_means([r for r in rows if not r.refined])
    results = [a.result for a in run.answered]
    return BenchBody(
        run_id=uuid.uuid4().hex,
        command_id=config.command_id,
        model=run.model,
        device_class=config.device_class,
        threads=config.threads,
        n_ctx=config.n_ctx,
        kv_cache_type=config.kv_cache_type,
        pp_tokens=run.speed.pp_tokens,
        tg_tokens=run.speed.tg_tokens,
        prefill_tok_s=run.speed.prefill_tok_s,
        decode_tok_s=run.speed.decode_tok_s,
        zero_shot=quality.answer_latency(results, refined=False),
        refined=quality.answer_latency(results, refined=True) if config.refine else None,
        peak_rss_mb=run.peak_rss_mb,
        cpu_seconds=run.cpu_s,
        load_1m_before=run.load_before,
        load_1m_after=run.load_after,
        contended=process.is_contended(
            threads=config.threads, load_before=run.load_before, utilisation=run.utilisation
        ),
        judge=judge,
        reference=reference,
        categories=quality.categories(rows, ref_means if reference else None),
        questions=rows,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )


def _run_reference(
    config: BenchConfig, answered: list[_Answered], report: Progress
) -> ModelRef | None:
    if config.reference_path is None or not answered:
        return None
    runtime = _load(config, config.reference_path, config.reference_model_id)
    questions = [item.question for item in answered]
    try:
        results = _answer_all(
            runtime, replace(config, questions=questions), False, "reference", report
        )
        ref = model_ref(runtime)
    finally:
        runtime.close()
    for item, result in zip(answered, results, strict=True):
        item.reference_answer = result.initial if result is not None else None
    return ref


def _run_judge(config: BenchConfig, answered: list[_Answered], report: Progress) -> ModelRef | None:
    if config.judge_path is None or not answered:
        return None
    runtime = _load(config, config.judge_path, config.judge_model_id)
    judge = Judge(runtime, max_tokens=config.judge_max_tokens, mode=config.judge_mode)
    try:
        for index, item in enumerate(answered):
            report("judging", index, len(answered))
            _grade(judge, item, config.refine)
        report("judging", len(answered), len(answered))
        ref = model_ref(runtime)
    finally:
        runtime.close()
    return ref


def _grade(judge: Judge, item: _Answered, refine: bool) -> None:
    question, result = item.question, item.result
    item.judge_y0 = judge.grade(question.prompt, result.initial, question.reference).score
    if refine:
        item.judge_y1 = judge.grade(question.prompt, result.answer, question.reference).score
    if item.reference_answer is not None:
        verdict = judge.grade(question.prompt, item.reference_answer, question.reference)
        item.reference_score = verdict.score


def _question_results(answered: Sequence[_Answered], refine: bool) -> list[QuestionResult]:
    rows = []
    for item in answered:
        result = item.result
        rows.append(_question_row(item, False, item.judge_y0, result.initial, result.stages[0]))
        if refine:
            rows.append(_question_row(item, True, item.judge_y1, result.answer, result))
    return rows


def _question_row(
    item: _Answered, refined: bool, judge_score: float | None, text: str, cost: _Cost
) -> QuestionResult:
    """One row per served answer: y0 costs its first stage, y1 the whole refinement."""
    return QuestionResult(
        question_id=item.question.question_id,
        category=item.question.category,
        refined=refined,
        judge_score=judge_score,
        reference_judge_score=item.reference_score,
        exact_correct=check_exact(item.question, text),
        e2e_ms=cost.total_s * 1000,
        generated_tokens=cost.generated_tokens,
        prompt_tokens_evaluated=cost.prompt_tokens_evaluated,
    )
