"""Command-line groups the controller side provides: ``controller`` and ``plan``."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

controller_app = typer.Typer(help="Run and administer the fleet controller.", no_args_is_help=True)
plan_app = typer.Typer(help="Show and apply model-to-device plans.", no_args_is_help=True)

logger = logging.getLogger(__name__)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (env EDGEFLEET_CONTROLLER_* wins)"),
]


def _settings(config: Path | None, **overrides: Any) -> Any:
    from controller.core.config import load_settings

    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except (ValidationError, FileNotFoundError) as exc:
        typer.echo(f"invalid controller settings: {exc}", err=True)
        raise typer.Exit(2) from None


@controller_app.command("mosquitto-config")
def mosquitto_config(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="directory for the files")] = None,
) -> None:
    """Write mosquitto.conf, the password file and the ACL file from the device registry."""
    from controller.core.db import create_db_engine, migrate
    from controller.enrollment import Enrollment

    settings = _settings(config)
    if settings.mqtt_password is None:
        typer.echo("set EDGEFLEET_CONTROLLER_MQTT_PASSWORD (the controller's MQTT login)", err=True)
        raise typer.Exit(2)
    engine = create_db_engine(settings.db_url)
    migrate(engine)
    files = Enrollment(engine, settings).sync_broker_files(directory=out)
    engine.dispose()
    assert files is not None
    typer.echo(f"config:    {files.config}\npasswords: {files.passwords}\nacl:       {files.acl}")
    typer.echo(f"start it with: mosquitto -c {files.config}")


@controller_app.command("run")
def run(config: ConfigOption = None) -> None:
    """Run the controller: migrate the database, start broker and ingest, serve the API."""
    import uvicorn

    from controller.app import create_app
    from controller.runtime import ControllerRuntime

    settings = _settings(config)
    runtime = ControllerRuntime(settings).start()
    try:
        assert runtime.engine is not None and runtime.ingest is not None
        app = create_app(
            settings,
            engine=runtime.engine,
            command_sender=runtime.commands,
            ingest_stats=runtime.ingest.stats,
            migrate_db=False,  # the runtime migrated before starting ingest
        )
        app.state.edgefleet.runtime = runtime
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn that into a normal
        # exit so the runtime below still stops (ingest drained, broker closed)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")
    finally:
        runtime.stop()


def _register_plan_commands() -> None:
    """The plan group's commands live with the planner (imported lazily inside each)."""
    from controller.planner import cli as plan_cli

    for name in ("show", "apply", "history", "scores"):
        plan_app.command(name)(getattr(plan_cli, name))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


_register_plan_commands()
