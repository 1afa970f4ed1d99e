"""The stored bench record, both ways: a ``bench`` body into rows, rows back into a ``BenchRun``.

Ingest flattens a validated ``BenchBody`` into a ``benchmark_run`` row (plus
per-category and per-question rows); the planner reads the run and question
rows back as the ``BenchRun`` it scores. Both directions live here, and the
latency and question columns are named after the message fields they hold,
so a field added or renamed in ``shared.messages`` cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from controller.models import BenchmarkQuestion, BenchmarkRun
from controller.planner.types import BenchRun, suite_label
from shared.messages import AnswerLatency, BenchBody, Envelope, QuestionResult
from shared.served_latency import served_latency_ms
from shared.strategies import Strategy

LATENCY_MODES = ("zero_shot", "refined")
"""Column prefixes of the two answer modes (``BenchBody.zero_shot`` and ``.refined``)."""
LATENCY_FIELDS = tuple(AnswerLatency.model_fields)
"""Each mode's columns are ``<mode>_<field>`` for these ``AnswerLatency`` fields."""
RUN_FIELDS = frozenset(
    {
        "threads", "n_ctx", "kv_cache_type", "pp_tokens", "tg_tokens", "peak_rss_mb",
        "cpu_seconds", "load_1m_before", "load_1m_after", "contended", "started_at",
        "finished_at",
    }
)  # fmt: skip
"""Body fields stored as they are, in columns of the same name."""


def run_row(envelope: Envelope[BenchBody], received_at: datetime) -> dict[str, Any]:
    """A ``benchmark_run`` row: speed, latency and memory of one model on one device."""
    body = envelope.body
    row: dict[str, Any] = {
        "device_id": envelope.device_id,
        "device_class": body.device_class,
        "model_id": body.model.model_id,
        "model_sha256": body.model.sha256,
        "run_id": body.run_id,
        "command_id": body.command_id,
        "seq": envelope.seq,
        "model_ref": body.model.model_dump(mode="json"),
        "judge_model_id": body.judge.model_id if body.judge else None,
        "judge_sha256": body.judge.sha256 if body.judge else None,
        "reference_model_id": body.reference.model_id if body.reference else None,
        "suite_name": body.suite.name if body.suite else None,
        "suite_sha256": body.suite.sha256 if body.suite else None,
        "sent_at": envelope.sent_at,
        "received_at": received_at,
    }
    row |= body.model_dump(include=set(RUN_FIELDS))
    if body.prefill_tok_s:
        row |= {
            "prefill_tok_s": body.prefill_tok_s.mean,
            "prefill_tok_s_std": body.prefill_tok_s.std,
        }
    if body.decode_tok_s:
        row |= {
            "decode_tok_s": body.decode_tok_s.mean,
            "decode_tok_s_std": body.decode_tok_s.std,
            "speed_samples": body.decode_tok_s.n,
        }
    for mode in LATENCY_MODES:
        latency: AnswerLatency | None = getattr(body, mode)
        if latency is not None:
            row |= {f"{mode}_{name}": value for name, value in latency.model_dump().items()}
    return row


def detail_rows(
    envelope: Envelope[BenchBody], run_pk: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``benchmark_result`` rows (per category and mode) and ``benchmark_question`` rows."""
    body = envelope.body
    common = {
        "run_pk": run_pk,
        "device_id": envelope.device_id,
        "device_class": body.device_class,
        "model_id": body.model.model_id,
        "measured_at": body.finished_at or envelope.sent_at,
    }
    results = []
    for cat in body.categories:
        strategy = cat.strategy or Strategy.from_refine(cat.refined).name
        latency = served_latency_ms(
            strategy, zero_shot=body.zero_shot, refined=body.refined, questions=body.questions
        )
        results.append(
            common
            | cat.model_dump()
            | {
                "strategy": strategy,
                "decode_tok_s": body.decode_tok_s.mean if body.decode_tok_s else None,
                "prefill_tok_s": body.prefill_tok_s.mean if body.prefill_tok_s else None,
                "e2e_ms_p50": latency[0] if latency else None,
                "e2e_ms_p95": latency[1] if latency else None,
                "peak_rss_mb": body.peak_rss_mb,
            }
        )
    judge = body.judge
    ungraded = {"judge_model_id": None, "judge_sha256": None}  # every row has the same keys
    graded = {"judge_model_id": judge.model_id, "judge_sha256": judge.sha256} if judge else ungraded
    questions = [
        common
        | q.model_dump()
        | (graded if q.type == "judged" else ungraded)
        | {"strategy": q.served_by}
        for q in body.questions
    ]
    return results, questions


def _latency(run: BenchmarkRun, mode: str) -> AnswerLatency | None:
    values = {name: getattr(run, f"{mode}_{name}") for name in LATENCY_FIELDS}
    if any(value is None for value in values.values()):
        return None  # the run did not measure this mode
    return AnswerLatency.model_validate(values)


def question_result(row: BenchmarkQuestion) -> QuestionResult:
    """One stored question back as the message's ``QuestionResult``."""
    return QuestionResult.model_validate(row, from_attributes=True)


def bench_run(run: BenchmarkRun, questions: Iterable[BenchmarkQuestion]) -> BenchRun:
    """What the planner keeps of one stored run and its question rows."""
    return BenchRun(
        model_id=run.model_id,
        device_class=run.device_class,
        peak_rss_mb=run.peak_rss_mb,
        prefill_tok_s=run.prefill_tok_s,
        decode_tok_s=run.decode_tok_s,
        zero_shot=_latency(run, "zero_shot"),
        refined=_latency(run, "refined"),
        questions=tuple(map(question_result, questions)),
        contended=run.contended,
        suite=suite_label(run.suite_name, run.suite_sha256)
        if run.suite_name and run.suite_sha256
        else None,
    )
