"""Rich tables for a bench result: speed, and quality per category as in the paper's Table 3."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from agent.bench.throughput import Throughput
from shared import quality
from shared.messages import AnswerLatency, BenchBody, CategoryQuality, QuestionResult, Spread
from shared.strategies import Strategy


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
    table.add_row("refine:1 (3 stages)", _latency(body.refined))
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
    """Per category: judge mean, % of reference and exact accuracy, one column set per strategy."""
    judge = body.judge.model_id if body.judge else "no judge"
    ref = body.reference.model_id if body.reference else "no reference"
    table = Table(
        title=f"quality (judge: {judge}; reference: {ref})",
        caption="judge: mean 1-10, (k?) = k ratings missing; % ref: judge mean / reference's",
    )
    table.add_column("category", no_wrap=True)
    table.add_column("n")
    strategies = list(
        dict.fromkeys(row.strategy or _by_flag(row.refined) for row in body.categories)
    )
    for strategy in strategies:
        for column in ("judge", "% ref", "exact"):
            table.add_column(f"{column} {strategy}")
    rows = {
        (row.category, row.type, row.strategy or _by_flag(row.refined)): row
        for row in body.categories
    }
    for category, kind in sorted({(row.category, row.type) for row in body.categories}):
        cells = [rows.get((category, kind, strategy)) for strategy in strategies]
        n = next((cell.n for cell in cells if cell is not None), 0)
        label = category if kind == "judged" else f"{category} ({kind})"
        table.add_row(label, str(n), *(text for cell in cells for text in _cell(cell)))
    return table


def _by_flag(refined: bool) -> str:
    return Strategy.from_refine(refined).name


def _interval(i: quality.Interval) -> str:
    return f"[{100 * i.low:.0f}, {100 * i.high:.0f}]%"


def summary_table(body: BenchBody) -> Table:
    """The suite's headline numbers per strategy, each with n and a 95 % interval."""
    suite = body.suite.name if body.suite else "unnamed suite"
    table = Table(title=f"quality on {suite}, 95 % intervals", show_header=False)
    table.add_column("what")
    table.add_column("value")
    rows = body.questions
    for kind in ("exact", "choice"):
        typed = [r for r in rows if r.type == kind]
        acc = quality.accuracy(typed)
        if acc is not None:
            table.add_row(f"{kind} accuracy, direct", _accuracy(acc))
        norm = quality.accuracy(typed, norm=True) if kind == "choice" else None
        if norm is not None:
            table.add_row("choice acc_norm (per byte)", _accuracy(norm))
        for strategy in quality.strategies_in(typed):
            paired = quality.versus_direct(typed, strategy)
            acc = quality.accuracy(paired, refined=True)
            if acc is not None:
                table.add_row(f"{kind} accuracy, {strategy}", _accuracy(acc))
            _paired_row(table, kind, strategy, paired)
    judged = [r for r in rows if r.type == "judged"]
    for strategy in quality.strategies_in(judged):
        _paired_row(table, "judged", strategy, quality.versus_direct(judged, strategy))
    _relative_rows(table, rows)
    return table


def _accuracy(acc: quality.Accuracy) -> str:
    return f"{100 * acc.value:.1f}% {_interval(acc.interval)} (n={acc.n})"


def _paired_row(table: Table, kind: str, strategy: str, rows: Sequence[QuestionResult]) -> None:
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
    table.add_row(f"{kind}: {strategy} - direct", text)


def _relative_rows(table: Table, rows: Sequence[QuestionResult]) -> None:
    baseline = quality.baseline_quality(rows)
    estimates = [("B (of reference)", baseline)] + [
        (f"I ({strategy} - B)", quality.improvement_estimate(quality.versus_direct(rows, strategy)))
        for strategy in quality.strategies_in(rows)
    ]
    for label, estimate in estimates:
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
