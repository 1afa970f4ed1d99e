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

from agent.bench import latency, process, throughput
from agent.bench.items import Outcome, attach_reference, item_rows, run_items
from agent.bench.judge import Judge
from agent.inference.refine import StageLimits
from agent.inference.runtime import ModelRuntime
from agent.inference.strategies import StrategyResult
from agent.models.store import sha256_file
from agent.probe import load_1m
from shared.messages import BenchBody, ModelRef, SuiteRef
from shared.profiles import DeviceProfile
from shared.quality import category_rows
from shared.strategies import DIRECT, REFINE_1, Strategy
from shared.suites.builtin import load_builtin
from shared.suites.items import JudgedItem
from shared.suites.suite import Suite

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``."""


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark and how."""

    model_path: Path
    suite: Suite = field(default_factory=load_builtin)
    judge_path: Path | None = None
    reference_path: Path | None = None
    strategies: tuple[Strategy, ...] = (DIRECT, REFINE_1)
    """Run on every answered item; ``direct`` always runs, as the baseline the others pair with."""
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
    outcomes: list[Outcome]
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
        outcomes = run_items(
            runtime,
            config.suite.items,
            strategies=config.strategies,
            limits=config.limits,
            phase="answers",
            progress=report,
        )
        meter.stop()
        model = model_ref(runtime)
    finally:
        runtime.close()
    return _CandidateRun(
        model=model,
        speed=speed,
        outcomes=[o for o in outcomes if o is not None],
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
    reference = _run_reference(config, run.outcomes, report)
    judge = _run_judge(config, run.outcomes, report)
    rows = item_rows(run.outcomes)
    served = _served_by(run.outcomes)
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
        zero_shot=latency.answer_latency(served.get(DIRECT, [])),
        refined=latency.answer_latency(served.get(REFINE_1, [])),
        peak_rss_mb=run.peak_rss_mb,
        cpu_seconds=run.cpu_s,
        load_1m_before=run.load_before,
        load_1m_after=run.load_after,
        contended=process.is_contended(
            threads=config.threads, load_before=run.load_before, utilisation=run.utilisation
        ),
        judge=judge,
        reference=reference,
        categories=category_rows(rows),
        suite=SuiteRef(
            name=config.suite.name, version=config.suite.version, sha256=config.suite.sha256
        ),
        questions=rows,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )


def _served_by(outcomes: list[Outcome]) -> dict[Strategy, list[StrategyResult]]:
    by_strategy: dict[Strategy, list[StrategyResult]] = {}
    for outcome in outcomes:
        for strategy, result in outcome.results.items():
            by_strategy.setdefault(strategy, []).append(result)
    return by_strategy


def _run_reference(
    config: BenchConfig, outcomes: list[Outcome], report: Progress
) -> ModelRef | None:
    if config.reference_path is None or not outcomes:
        return None
    runtime = _load(config, config.reference_path, config.reference_model_id)
    try:
        theirs = run_items(
            runtime,
            [o.item for o in outcomes],
            strategies=(DIRECT,),
            limits=config.limits,
            phase="reference",
            progress=report,
        )
        ref = model_ref(runtime)
    finally:
        runtime.close()
    attach_reference(outcomes, theirs)
    return ref


def _run_judge(config: BenchConfig, outcomes: list[Outcome], report: Progress) -> ModelRef | None:
    judged = [o for o in outcomes if isinstance(o.item, JudgedItem) and o.results]
    if config.judge_path is None or not judged:
        return None
    runtime = _load(config, config.judge_path, config.judge_model_id)
    judge = Judge(runtime, max_tokens=config.judge_max_tokens, mode=config.judge_mode)
    try:
        for index, outcome in enumerate(judged):
            report("judging", index, len(judged))
            _grade(judge, outcome)
        report("judging", len(judged), len(judged))
        ref = model_ref(runtime)
    finally:
        runtime.close()
    return ref


def _grade(judge: Judge, outcome: Outcome) -> None:
    item = outcome.item
    assert isinstance(item, JudgedItem)
    graded: dict[str, float | None] = {}  # strategies that served the same text share a grade
    for strategy, result in outcome.results.items():
        if result.answer not in graded:
            graded[result.answer] = judge.grade(item.question, result.answer, item.reference).score
        outcome.judge_scores[strategy] = graded[result.answer]
    if outcome.reference_text is not None:
        verdict = judge.grade(item.question, outcome.reference_text, item.reference)
        outcome.reference_score = verdict.score
