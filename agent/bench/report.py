"""Rich tables for a bench result: speed, and quality per category as in the paper's Table 3."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from agent.bench.throughput import Throughput
from shared import quality
from shared.messages import AnswerLatency, BenchBody, CategoryQuality, QuestionResult, Spread


def _spread(value: Spread | None) -> str:
    return f"{value.mean:.1f} ± {value.std:.1f}" if value else "-"


def _latency(value: AnswerLatency | None) -> str:
    if value is None:
        return "-"
    return (
        f"TTFT p50 {value.ttft_ms_p50:.0f} / p95 {value.ttft_ms_p95:.0f} ms; "
        f"e2e p50 {value.e2e_ms_p50 / 1000:.2f} / p95 {value.e2e_ms_p95 / 1000:.2f} s; "
        f"{value.generated_tokens_mean:.0f} tok"
    )


def speed_table(body: BenchBody) -> Table:
    """Throughput, latency, memory and machine state of one run."""
    table = Table(title=f"{body.model.model_id} on {body.device_class}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("threads / n_ctx / KV", f"{body.threads} / {body.n_ctx} / {body.kv_cache_type}")
    table.add_row(f"pp{body.pp_tokens} tok/s", _spread(body.prefill_tok_s))
    table.add_row(f"tg{body.tg_tokens} tok/s", _spread(body.decode_tok_s))
    table.add_row("zero-shot", _latency(body.zero_shot))
    table.add_row("refined (3 stages)", _latency(body.refined))
    table.add_row("peak RSS", f"{body.peak_rss_mb:.0f} MB")
    table.add_row("CPU seconds", f"{body.cpu_seconds:.1f}")
    contended = " [red]CONTENDED[/red]" if body.contended else ""
    table.add_row(
        "load 1m before/after", f"{body.load_1m_before:.2f} / {body.load_1m_after:.2f}{contended}"
    )
    return table


def _cell(row: CategoryQuality | None) -> tuple[str, str, str]:
    if row is None:
        return "-", "-", "-"
    judge = "-" if row.judge_mean is None else f"{row.judge_mean:.1f}"
    if row.judge_missing:
        judge += f" ({row.judge_missing}?)"
    pct = "-" if row.pct_of_reference is None else f"{row.pct_of_reference:.0f}%"
    exact = "-" if row.exact_accuracy is None else f"{100 * row.exact_accuracy:.0f}%"
    return judge, pct, exact


def category_table(body: BenchBody) -> Table:
    """Per category: judge mean, % of reference and exact accuracy, zero-shot vs refined."""
    judge = body.judge.model_id if body.judge else "no judge"
    ref = body.reference.model_id if body.reference else "no reference"
    table = Table(
        title=f"quality (judge: {judge}; reference: {ref})",
        caption="judge: mean 1-10, (k?) = k ratings missing; % ref: judge mean / reference's",
    )
    table.add_column("category", no_wrap=True)
    for column in ("n", "judge y0", "% ref y0", "exact y0"):
        table.add_column(column)
    for column in ("judge y1", "% ref y1", "exact y1"):
        table.add_column(column)
    rows = {(row.category, row.type, row.refined): row for row in body.categories}
    for category, kind in sorted({(row.category, row.type) for row in body.categories}):
        zero, refined = rows.get((category, kind, False)), rows.get((category, kind, True))
        n = zero.n if zero else 0
        label = category if kind == "judged" else f"{category} ({kind})"
        table.add_row(label, str(n), *_cell(zero), *_cell(refined))
    return table


def _interval(i: quality.Interval) -> str:
    return f"[{100 * i.low:.0f}, {100 * i.high:.0f}]%"


def summary_table(body: BenchBody) -> Table:
    """The suite's headline numbers, each with n and a 95 % interval (shared.quality)."""
    suite = body.suite.name if body.suite else "unnamed suite"
    table = Table(title=f"quality on {suite}, 95 % intervals", show_header=False)
    table.add_column("what")
    table.add_column("value")
    rows = body.questions
    for kind in ("exact", "choice"):
        typed = [r for r in rows if r.type == kind]
        for refined in (False, True):
            acc = quality.accuracy(typed, refined=refined)
            if acc is not None:
                mode = "refined" if refined else "zero-shot"
                table.add_row(f"{kind} accuracy, {mode}", _accuracy(acc))
        norm = quality.accuracy(typed, norm=True) if kind == "choice" else None
        if norm is not None:
            table.add_row("choice acc_norm (per byte)", _accuracy(norm))
        _paired_row(table, kind, typed)
    _paired_row(table, "judged", [r for r in rows if r.type == "judged"])
    _relative_rows(table, rows)
    return table


def _accuracy(acc: quality.Accuracy) -> str:
    return f"{100 * acc.value:.1f}% {_interval(acc.interval)} (n={acc.n})"


def _paired_row(table: Table, kind: str, rows: Sequence[QuestionResult]) -> None:
    paired = quality.paired_comparison(rows)
    if paired is None:
        return
    scale, unit = (100, " pts") if kind != "judged" else (1, " judge pts")
    text = (
        f"{scale * paired.difference:+.1f}{unit} "
        f"[{scale * paired.interval.low:+.1f}, {scale * paired.interval.high:+.1f}] (n={paired.n})"
    )
    if paired.mcnemar_p is not None:
        text += f"; {paired.better} better, {paired.worse} worse, McNemar p={paired.mcnemar_p:.2g}"
    table.add_row(f"{kind}: refined - zero-shot", text)


def _relative_rows(table: Table, rows: Sequence[QuestionResult]) -> None:
    for label, estimate in (
        ("B (of reference)", quality.baseline_quality(rows)),
        ("I (refined - B)", quality.improvement_estimate(rows)),
    ):
        if estimate is not None:
            low, high = estimate.interval.low, estimate.interval.high
            table.add_row(
                label,
                f"{estimate.value:+.2f} [{low:+.2f}, {high:+.2f}] (n={estimate.n_questions})",
            )


def sweep_table(rows: Sequence[tuple[int, Throughput]], best: int) -> Table:
    """pp/tg tokens/s per thread count."""
    table = Table(title="thread sweep")
    for column in ("threads", "pp tok/s", "tg tok/s"):
        table.add_column(column)
    for threads, speed in rows:
        mark = " *" if threads == best else ""
        table.add_row(f"{threads}{mark}", _spread(speed.prefill_tok_s), _spread(speed.decode_tok_s))
    return table
