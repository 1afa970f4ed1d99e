"""The fleet demo's summary on the terminal: devices, benchmarks, leaderboard, plan, answers."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from demo.report import DemoReport

ANSWER_CHARS = 600


def render(console: Console, report: DemoReport) -> None:
    """Print every part of the report that the demo got to."""
    if report.devices:
        console.print(_devices(report))
    if report.benches:
        console.print(_benches(report))
    for device_class, rows in sorted(report.scores.items()):
        console.print(_leaderboard(device_class, rows, report))
    if report.plan:
        console.print(_plan(report.plan))
    for device_id, answer in report.answers.items():
        console.print(_answer(device_id, answer))
    if report.timings_s:
        steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in report.timings_s.items())
        console.print(f"[bold]took {report.total_s:.0f} s:[/bold] {steps}", soft_wrap=True)
    for note in report.caveats:
        console.print(f"[yellow]caveat:[/yellow] {note}", soft_wrap=True)


def _devices(report: DemoReport) -> Table:
    table = Table(title="Devices (agents on this machine, class budgets from firmware-config)")
    for column in ("device", "class", "memory", "latency", "n_ctx / KV", "threads", "serving"):
        table.add_column(column, overflow="fold")
    for device_id, d in report.devices.items():
        model = d.get("model_id") or "-"
        table.add_row(
            device_id,
            d["device_class"],
            f"{d['memory_budget_mb']} MB",
            f"{d['latency_budget_s']:.0f} s",
            f"{d['n_ctx']} / {d['kv_cache_type']}",
            str(d["threads"]),
            f"{model} ({d.get('status', '?')})",
        )
    return table


def _benches(report: DemoReport) -> Table:
    table = Table(title=f"Benchmarks ({_questions(report)} per model, refinement on)")
    for column in ("device", "models", "judge", "reference", "result"):
        table.add_column(column, overflow="fold")
    for b in report.benches:
        result = b.get("status", "?") + (f": {b['reason']}" if b.get("reason") else "")
        table.add_row(
            b["device_id"],
            "\n".join(b["model_ids"]),
            b.get("judge_model_id") or "none (does not fit)",
            b.get("reference_model_id") or "-",
            result,
        )
    return table


def _questions(report: DemoReport) -> str:
    first = report.benches[0]
    return f"{first['max_questions']} {'/'.join(first['categories'])} question(s)"


def _leaderboard(device_class: str, rows: list[dict[str, Any]], report: DemoReport) -> Table:
    weights = ", ".join(f"{k}={v:g}" for k, v in report.weights.items())
    table = Table(title=f"PeRFICS leaderboard, class {device_class}", caption=weights)
    for column in ("model", "refine", "Psi", "B [95% CI]", "I", "C", "memory", "p95", "flags"):
        table.add_column(
            column, justify="left" if column in ("model", "flags") else "right", overflow="fold"
        )
    for row in rows:
        low, high = row["B_ci"]
        memory = f"{row['memory_mb']:.0f} MB" if row["memory_mb"] is not None else "?"
        flags = [
            "predicted" if row["predicted"] else "measured",
            *(["pooled quality"] if row["quality_pooled"] else []),
            *([] if row["memory_measured"] else ["memory estimated"]),
        ]
        table.add_row(
            row["model_id"],
            "on" if row["refine"] else "off",
            f"{row['psi']:.3f}",
            f"{row['B']:.2f} [{low:.2f}, {high:.2f}]",
            f"{row['I']:+.2f}",
            f"{row['C']:.3f}",
            memory,
            f"{row['latency_p95_s']:.1f} s",
            ", ".join(flags),
        )
    return table


def _plan(plan: dict[str, Any]) -> Panel:
    lines = [Text(f"{plan['summary']}; rollout {plan['state']}", style="bold")]
    for device_id, a in plan["assignments"].items():
        choice = f"{a['model_id']} (refine {'on' if a['refine'] else 'off'})"
        if a["model_id"] is None:
            choice = "nothing fits"
        score = f", Psi {a['score']:.3f}" if a["score"] is not None else ""
        lines.append(Text(f"{device_id} [{a['device_class']}]: {choice}{score}, {a['status']}"))
        lines.extend(Text(f"    {reason}", style="dim") for reason in a["reasons"])
    return Panel(Group(*lines), title=f"Plan {plan['id']}", title_align="left")


def _answer(device_id: str, answer: dict[str, Any]) -> Panel:
    text = answer["answer"].strip()
    if len(text) > ANSWER_CHARS:
        text = text[:ANSWER_CHARS] + " [...]"
    mode = "refined (answer, critique, rewrite)" if answer["refined"] else "not refined"
    if answer["fell_back"]:
        mode += f", fell back to y0: {answer['fallback_reason']}"
    latency_s = answer["latency_ms"] / 1000
    timing = (
        f"{mode}; {answer['stages']} stage(s), TTFT {answer['ttft_ms'] / 1000:.2f} s, "
        f"{answer['completion_tokens']} tokens in {latency_s:.2f} s on the device"
    )
    title = f"{device_id} ({answer['model']}): {answer['question']}"
    return Panel(Group(Text(text), Text(timing, style="dim")), title=title, title_align="left")
