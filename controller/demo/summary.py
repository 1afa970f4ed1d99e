"""The fleet demo's summary on the terminal: devices, benchmarks, leaderboard, plan, answers."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from controller.demo.report import DemoReport
from shared.strategies import option_label

ANSWER_CHARS = 600


def render(console: Console, report: DemoReport) -> None:
    """Print every part of the report that the demo got to."""
    if report.devices:
        console.print(_devices(report))
    if report.benches:
        console.print(_benches(report))
    if report.judging:
        console.print(_judging(report))
    if report.accuracy:
        console.print(_accuracy(report))
    _render_plan(console, report)
    _render_answers(console, report)
    if report.timings_s:
        steps = "; ".join(f"{name} {seconds:.0f} s" for name, seconds in report.timings_s.items())
        console.print(f"[bold]took {report.total_s:.0f} s:[/bold] {steps}", soft_wrap=True)
    for note in report.caveats:
        console.print(f"[yellow]caveat:[/yellow] {note}", soft_wrap=True)


def _render_plan(console: Console, report: DemoReport) -> None:
    for device_class, rows in sorted(report.scores.items()):
        console.print(_leaderboard(device_class, rows))
    if report.scores:
        weights = ", ".join(f"{k} {v:g}" for k, v in report.weights.items())
        console.print(f"[dim]flags: {FLAGS_LEGEND}\nPeRFICS weights: {weights}[/dim]")
    if report.plan:
        console.print(_plan(report.plan))


def _render_answers(console: Console, report: DemoReport) -> None:
    if report.answers:
        question = next(iter(report.answers.values()))["question"]
        console.print(
            f"[bold]Asked every device (refinement on or off as planned):[/bold] {question}"
        )
    for device_id, answer in report.answers.items():
        console.print(_answer(device_id, answer))
    if report.gateway_answer:
        answer = report.gateway_answer
        console.print("[bold]Asked the fleet's gateway (model auto, one address):[/bold]")
        console.print(_answer(f"gateway -> {answer['device_id']}", answer))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _devices(report: DemoReport) -> Table:
    table = _table(
        "Devices (agents on this machine; class budgets from firmware-config)",
        "device",
        "class",
        "memory",
        "latency",
        "n_ctx, KV",
        "threads",
        "engine",
        "serving",
    )
    for device_id, d in report.devices.items():
        table.add_row(
            device_id,
            d["device_class"],
            f"{d['memory_budget_mb']} MB",
            f"{d['latency_budget_s']:.0f} s",
            f"{d['n_ctx']}, {d['kv_cache_type']}",
            str(d["threads"]),
            d.get("engine", "-"),
            f"{d.get('model_id') or '-'} ({d.get('status', '?')})",
        )
    return table


def _benches(report: DemoReport) -> Table:
    table = _table("Benchmarks", "device", "suite", "models", "judge / reference", "result")
    for b in report.benches:
        graders = "none: they do not fit its memory"
        if b.get("judge_model_id"):
            graders = f"{b['judge_model_id']} / {b.get('reference_model_id') or '-'}"
        result = b.get("status", "?") + (f": {b['reason']}" if b.get("reason") else "")
        table.add_row(b["device_id"], _suite(b), "\n".join(b["model_ids"]), graders, result)
    return table


def _judging(report: DemoReport) -> Table:
    table = _table(
        "Judged answers: which device graded them, with which judge",
        "answers of",
        "graded",
        "judged by (judge model)",
        "where",
    )
    for j in report.judging:
        judges = [
            f"{device_id} ({report.devices[device_id]['device_class']}): {model_id}"
            for device_id, model_id in j["judged_by"].items()
        ]
        if j.get("pending"):
            where = f"ungraded: {j['pending']}"
        elif list(j["judged_by"]) == [j["device_id"]]:
            where = "on the device, in its bench"
        else:
            where = "off the device, in judge steps"
        table.add_row(
            f"{j['device_id']} ({j['device_class']})",
            f"{j['graded']} of {j['answers']}",
            "\n".join(judges) or "-",
            where,
        )
    return table


def _suite(bench: dict[str, Any]) -> str:
    if bench.get("suite_id"):
        return (
            f"{bench['suite_id']}, up to {bench['max_questions']} items, scored by log-likelihood"
        )
    categories = "/".join(bench.get("categories") or ["all"])
    refined = ", refined too" if bench.get("refine") else ""
    return f"{bench['max_questions']} judged {categories} question(s){refined}"


def _accuracy(report: DemoReport) -> Table:
    table = _table(
        "Verifiable quality: multiple choice, right or wrong without a judge (95% interval)",
        "device",
        "model",
        "suite",
        "accuracy",
        "n",
    )
    for device_id, models in report.accuracy.items():
        for model_id, a in models.items():
            interval = f"{100 * a['acc']:.0f}% [{100 * a['low']:.0f}, {100 * a['high']:.0f}]"
            table.add_row(device_id, model_id, a["suite"], interval, str(a["n"]))
    return table


def _leaderboard(device_class: str, rows: list[dict[str, Any]]) -> Table:
    table = _table(
        f"PeRFICS leaderboard, class {device_class} (B, I: fraction of the reference)",
        "model",
        "Psi",
        "B [95% CI]",
        "I",
        "C",
        "memory",
        "p95",
        "flags",
    )
    for column in table.columns[1:7]:
        column.justify = "right"
    for row in rows:
        low, high = row["B_ci"]
        memory = f"{row['memory_mb']:.0f} MB" if row["memory_mb"] is not None else "?"
        table.add_row(
            option_label(row["model_id"], row.get("strategy"), row["refine"]).replace(" ", "\n", 1),
            f"{row['psi']:.3f}",
            f"{row['B']:.2f}\n[{low:.2f}, {high:.2f}]",
            f"{row['I']:+.2f}",
            f"{row['C']:.3f}",
            memory,
            f"{row['latency_p95_s']:.1f} s",
            "\n".join(_flags(row)),
        )
    return table


FLAGS_LEGEND = (
    "predicted: latency (so C and Psi) predicted, not measured on this class; "
    "pooled: B and I measured on another class; est: memory from the GGUF estimate"
)


def _flags(row: dict[str, Any]) -> list[str]:
    """What the row's numbers rest on, when it is not a measurement on this class."""
    flags = ["predicted"] if row["predicted"] else []
    if row["quality_pooled"]:
        flags.append("pooled")
    if not row["memory_measured"]:
        flags.append("est")
    return flags


def _plan(plan: dict[str, Any]) -> Panel:
    lines = [Text(f"{plan['summary']}; rollout {plan['state']}", style="bold")]
    for device_id, a in plan["assignments"].items():
        if a["model_id"] is None:
            choice = "nothing fits"
        else:
            choice = option_label(a["model_id"], a.get("strategy"), a["refine"])
        score = f", Psi {a['score']:.3f}" if a["score"] is not None else ""
        lines.append(Text(f"{device_id} ({a['device_class']}): {choice}{score}, {a['status']}"))
        lines.extend(Text(f"  - {reason}", style="dim") for reason in a["reasons"])
    return Panel(Group(*lines), title=f"Plan {plan['id']}", title_align="left", box=box.ROUNDED)


def _answer(device_id: str, answer: dict[str, Any]) -> Panel:
    text = answer["answer"].strip()
    if len(text) > ANSWER_CHARS:
        text = text[:ANSWER_CHARS] + " [...]"
    mode = "y0 -> critique -> y1" if answer["refined"] else "not refined"
    if answer["fell_back"]:
        mode += f", served y0: {answer['fallback_reason']}"
    timing = (
        f"{mode}; {answer['stages']} stage(s), first token after "
        f"{answer['ttft_ms'] / 1000:.2f} s, {answer['completion_tokens']} tokens in "
        f"{answer['latency_ms'] / 1000:.2f} s"
    )
    title = f"{device_id} ({answer['model']})"
    return Panel(Group(Text(text), Text(timing, style="dim")), title=title, title_align="left")
