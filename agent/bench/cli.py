"""``edgefleet bench``: benchmark a model file and print (and optionally save) the result."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from agent.config import REPO_PROFILES_DIR
from shared.demo_models import models_dir
from shared.messages import BenchBody
from shared.profiles import DeviceProfile, ProfileError, parse_profile
from shared.strategies import Strategy, StrategyError, parse_list
from shared.suites.builtin import BUILTIN, DEFAULT_SUITE, load_builtin
from shared.suites.suite import MAX_SUITE_BYTES, Suite, SuiteError, parse_suite

if TYPE_CHECKING:  # llama.cpp is imported only when a benchmark really runs
    from agent.bench.runner import BenchConfig

logger = logging.getLogger(__name__)
console = Console()

bench_app = typer.Typer(help="Benchmark models: throughput, latency, memory and quality.")


def load_class_profile(name: str) -> DeviceProfile:
    """A device-class profile from firmware-config/classes (``$EDGEFLEET_PROFILES_DIR``)."""
    directory = Path(os.environ.get("EDGEFLEET_PROFILES_DIR") or REPO_PROFILES_DIR)
    path = directory / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise ProfileError(f"no device-class profile {name!r}: {path} is missing") from None
    return parse_profile(text, source=str(path))


def largest_local_model(exclude: Path | None = None) -> Path | None:
    """The biggest GGUF in the models dir: the default judge, as the paper's strongest model."""
    candidates = [p for p in models_dir().glob("*.gguf") if exclude is None or p != exclude]
    return max(candidates, key=lambda p: p.stat().st_size, default=None)


class _Bar:
    """Adapts the runner's ``progress(phase, done, total)`` to a rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=max(total, 1))
        self.progress.update(self.tasks[phase], completed=done, total=max(total, 1))


def _config(device: DeviceProfile, **options: object) -> BenchConfig:
    from agent.bench.runner import BenchConfig
    from agent.inference.refine import StageLimits

    max_tokens = int(options.pop("max_tokens"))  # type: ignore[call-overload]
    limits = StageLimits(max_tokens, min(max_tokens, 160), max_tokens)
    return BenchConfig.from_profile(device, limits=limits, **options)


@bench_app.callback(invoke_without_command=True)
def bench(
    model: Annotated[Path, typer.Option(help="the GGUF model to benchmark")],
    judge: Annotated[
        Path | None, typer.Option(help="judge GGUF (default: the largest in the models dir)")
    ] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="skip judge scoring")] = False,
    judge_mode: Annotated[
        str, typer.Option(help="auto, text (parse Rating: [[N]]) or probability (expected digit)")
    ] = "auto",
    reference: Annotated[
        Path | None, typer.Option(help="reference model: quality is reported as % of its")
    ] = None,
    suite: Annotated[
        str, typer.Option(help=f"built-in suite: {', '.join(BUILTIN)}")
    ] = DEFAULT_SUITE,
    suite_file: Annotated[
        Path | None,
        typer.Option(help="your own suite (JSON lines; FastChat question.jsonl works too)"),
    ] = None,
    categories: Annotated[
        list[str] | None, typer.Option(help="only these categories (repeat or comma-separate)")
    ] = None,
    per_category: Annotated[
        int | None, typer.Option(min=1, help="at most this many questions per category")
    ] = None,
    strategies: Annotated[
        str,
        typer.Option(help="test-time strategies, e.g. direct,refine:1,verify-refine,vote:5"),
    ] = "direct,refine:1",
    threads: Annotated[int | None, typer.Option(min=1, help="llama.cpp threads")] = None,
    profile: Annotated[str, typer.Option(help="device-class profile")] = "dev-x86-1core",
    threads_sweep: Annotated[
        bool, typer.Option("--threads-sweep", help="measure 1..N threads, then use the fastest")
    ] = False,
    pp: Annotated[int, typer.Option(min=1, help="prompt tokens for pp throughput")] = 128,
    tg: Annotated[int, typer.Option(min=1, help="generated tokens for tg throughput")] = 64,
    repetitions: Annotated[int, typer.Option(min=1, help="throughput repetitions")] = 3,
    max_tokens: Annotated[int, typer.Option(min=1, help="token limit per answer stage")] = 256,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the bench body")] = None,
) -> None:
    """Benchmark MODEL: pp/tg tokens/s, latency, peak RSS, and quality on a suite."""
    device, selected = _inputs(profile, suite_file or suite, categories, per_category)
    if judge_mode not in ("auto", "text", "probability"):
        _fail(f"--judge-mode must be auto, text or probability, not {judge_mode!r}")
    judge_path = None if no_judge else (judge or largest_local_model())
    config = _config(
        device,
        model_path=model,
        suite=selected,
        judge_path=judge_path,
        reference_path=reference,
        strategies=tuple(_strategies(strategies)),
        threads=threads or device.threads,
        pp_tokens=pp,
        tg_tokens=tg,
        repetitions=repetitions,
        max_tokens=max_tokens,
        judge_mode=judge_mode,
    )
    sweep_max = (threads or os.cpu_count() or 1) if threads_sweep else 0
    body = _run(config, sweep_max)
    from agent.bench.report import category_table, speed_table, summary_table

    console.print(speed_table(body))
    console.print(category_table(body))
    console.print(summary_table(body))
    if json_out is not None:
        json_out.write_text(body.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"bench body written to {json_out}")


def _strategies(text: str) -> list[Strategy]:
    try:
        return parse_list(text)
    except StrategyError as exc:
        _fail(f"--strategies: {exc}")


def _inputs(
    profile: str, suite: Path | str, categories: list[str] | None, per_category: int | None
) -> tuple[DeviceProfile, Suite]:
    """The device profile and the selected items; exits with the reason when either fails."""
    wanted = [c.strip() for item in categories or [] for c in item.split(",") if c.strip()]
    try:
        device = load_class_profile(profile)
        selected = _suite(suite).filtered(wanted, per_category)
    except (ProfileError, SuiteError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    if not selected.items:
        _fail(f"no items selected (categories: {', '.join(wanted) or 'all'})")
    return device, selected


def _suite(source: Path | str) -> Suite:
    if isinstance(source, str):
        return load_builtin(source)
    try:
        if source.stat().st_size > MAX_SUITE_BYTES:
            _fail(f"{source}: a suite holds at most {MAX_SUITE_BYTES} bytes")
        data = source.read_bytes()
    except OSError as exc:
        _fail(f"{source}: cannot read: {exc.strerror or exc}")
    return parse_suite(data, name=source.stem, source=str(source))


def _run(config: BenchConfig, sweep_max: int) -> BenchBody:
    from agent.bench.report import sweep_table
    from agent.bench.runner import fastest, run_bench, sweep_threads
    from agent.inference.runtime import InferenceError

    console.print(
        f"{config.model_path.name}: suite {config.suite.name} ({_counts(config.suite)}), "
        f"judge: {config.judge_path.name if config.judge_path else 'none'}, "
        f"reference: {config.reference_path.name if config.reference_path else 'none'}"
    )
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            bar = _Bar(progress)
            if sweep_max:
                rows = sweep_threads(config, sweep_max, bar)
                best = fastest(rows)
                console.print(sweep_table(rows, best))
                console.print(f"fastest: {best} thread(s); a profile can adopt threads: {best}")
                config = replace(config, threads=best)
            body = run_bench(config, bar)
    except InferenceError as exc:
        _fail(str(exc))
    return BenchBody.model_validate(body.model_dump())


def _counts(suite: Suite) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(suite.counts().items()))


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)
