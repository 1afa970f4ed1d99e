"""``edgefleet demo fleet``: the whole product on this machine, real processes, offline.

A controller (embedded broker, SQLite) and two agents of different device
classes start in a fresh data directory; the demo models are imported,
benchmarked on the devices, scored, planned and rolled out through the API;
each device then answers a question with self-refinement. Every process is
stopped at the end, on Ctrl-C and on errors.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from controller.demo.classes import write_demo_classes
from controller.demo.local_fleet import FleetError, LocalFleet
from controller.demo.ports import port_in_use
from controller.demo.scenario import (
    DEFAULT_QUESTION,
    DEVICES,
    JUDGE,
    REFERENCE,
    DemoError,
    DemoOptions,
    FleetDemo,
    caveats,
)
from controller.demo.summary import render
from shared.demo_models import DEMO_MODELS, models_dir
from shared.profiles import ProfileError

console = Console()
INTERRUPTED = 130
"""Exit code after Ctrl-C (or SIGTERM), as shells report a SIGINT."""


def fleet(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="empty directory for the fleet's data (default: a temporary one)"),
    ] = None,
    api_port: Annotated[
        int, typer.Option(min=0, max=65535, help="controller API port (0: any free port)")
    ] = 8000,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="keep the fleet up for the dashboard (Ctrl-C)")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the summary to this JSON file")
    ] = None,
    question: Annotated[str, typer.Option(help="what to ask every device")] = DEFAULT_QUESTION,
    max_questions: Annotated[
        int, typer.Option(min=1, max=4, help="benchmark questions per model")
    ] = 2,
    max_tokens: Annotated[int, typer.Option(min=16, help="token limit per answer stage")] = 96,
) -> None:
    """Controller, two agents, benchmarks, PeRFICS leaderboard, plan and refined answers."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per API call
    models = _demo_models()
    if api_port and port_in_use(api_port):
        _fail(
            f"port {api_port} is already in use (another controller?): stop it, or pass "
            "--api-port N (0: any free port)"
        )
    workdir = _workdir(data_dir)
    options = DemoOptions(question=question, max_questions=max_questions, max_tokens=max_tokens)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the fleet as Ctrl-C does
    failed = True
    try:
        _run(workdir, api_port, models, options, Outputs(json_out, keep_running))
        failed = False
    except typer.Exit as stopped:
        failed = stopped.exit_code != INTERRUPTED
        raise
    finally:
        if failed:
            console.print(f"the fleet's data and logs are kept in {workdir}", soft_wrap=True)
        elif data_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Outputs:
    """Where the report goes besides the terminal, and whether the fleet stays up after."""

    json_out: Path | None
    keep_running: bool


def _run(
    workdir: Path, api_port: int, models: dict[str, Path], options: DemoOptions, outputs: Outputs
) -> None:
    try:
        classes = write_demo_classes(workdir / "classes", sorted(set(DEVICES.values())))
    except ProfileError as exc:
        _fail(str(exc))
    console.print(
        f"[bold]edgefleet fleet demo[/bold] in {workdir}: controller, agents "
        f"{', '.join(f'{d} ({c})' for d, c in DEVICES.items())}, "
        f"{len(classes)} classes at 1 thread each; everything through the API",
        soft_wrap=True,
    )
    fleet = LocalFleet(
        workdir,
        workdir / "classes",
        admin_token="eft_demo-admin-" + secrets.token_urlsafe(32),
        api_port=api_port,
        env=os.environ,
        # the fleet's own graders, so a kept-running fleet can profile (POST /profiling)
        controller_env={"judge_model_id": JUDGE, "reference_model_id": REFERENCE},
    )
    demo = FleetDemo(fleet, models, options, _step_done)
    try:
        report = demo.run()
        render(console, report)
        if outputs.keep_running:
            report.dashboard = {"url": f"{fleet.url}/dashboard/"}
        if outputs.json_out is not None:
            report.write_json(outputs.json_out)
        if outputs.keep_running:
            _serve_until_interrupted(fleet, demo.operator_token, report.gateway)
    except (DemoError, FleetError) as exc:
        demo.report.caveats = caveats(demo.report)
        render(console, demo.report)
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(INTERRUPTED) from None
    finally:
        console.print("stopping the agents and the controller...")
        fleet.stop()


def _serve_until_interrupted(fleet: LocalFleet, token: str, gateway: dict[str, str] | None) -> None:
    console.print(
        f"[bold]dashboard:[/bold] {fleet.url}/dashboard/ (sign in with the operator token "
        f"[bold]{token}[/bold])",
        soft_wrap=True,
    )
    if gateway is not None:
        console.print(
            f"[bold]chat page:[/bold] {gateway['chat_page']} (sign in with the client key "
            f"[bold]{gateway['client_key']}[/bold]); OpenAI clients: {gateway['url']}/v1",
            soft_wrap=True,
        )
    console.print("the fleet keeps running; Ctrl-C stops it")
    try:
        while all(child.running for child in fleet.group.children):
            time.sleep(1)
    except KeyboardInterrupt:
        return  # the way a kept-running demo ends
    raise FleetError(f"a process of the fleet exited\n{fleet.log_tails()}")


def _demo_models() -> dict[str, Path]:
    directory = models_dir()
    paths = {m.model_id: directory / m.filename for m in DEMO_MODELS.values()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        _fail(
            f"the demo models are missing ({', '.join(missing)}). Fetch them first: "
            "[bold]edgefleet models fetch-demo[/bold] (or `make demo`, which does it)."
        )
    return paths


def _workdir(data_dir: Path | None) -> Path:
    if data_dir is None:
        return Path(tempfile.mkdtemp(prefix="edgefleet-demo-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        _fail(f"{data_dir} is not empty: the demo needs a fresh data directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir.resolve()


def _step_done(name: str, seconds: float) -> None:
    console.print(f"[green]done[/green] {name} ({seconds:.1f} s)")


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)
