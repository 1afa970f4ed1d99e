"""Command-line groups the controller side provides: ``controller`` and ``plan``."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from controller.core.cli_options import ConfigOption, load_cli_settings, migrated_engine

controller_app = typer.Typer(help="Run and administer the fleet controller.", no_args_is_help=True)
plan_app = typer.Typer(help="Show, apply and profile model-to-device plans.", no_args_is_help=True)

logger = logging.getLogger(__name__)


@controller_app.command("mosquitto-config")
def mosquitto_config(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="directory for the files")] = None,
) -> None:
    """Write mosquitto.conf, the password file and the ACL file from the device registry."""
    from controller.enrollment import Enrollment

    settings = load_cli_settings(config)
    if settings.mqtt_password is None:
        typer.echo("set EDGEFLEET_CONTROLLER_MQTT_PASSWORD (the controller's MQTT login)", err=True)
        raise typer.Exit(2)
    engine = migrated_engine(settings)
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

    settings = load_cli_settings(config)
    runtime = ControllerRuntime(settings).start()
    try:
        assert runtime.engine is not None and runtime.ingest is not None
        app = create_app(
            settings,
            engine=runtime.engine,
            command_sender=runtime.commands,
            planning=runtime.planning,
            ingest_stats=runtime.ingest.stats,
            migrate_db=False,  # the runtime migrated before starting ingest
        )
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn that into a normal
        # exit so the runtime below still stops (ingest drained, broker closed)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")
    finally:
        runtime.stop()


def _register_plan_commands() -> None:
    """The plan group's commands live with the planner (imported lazily inside each)."""
    from controller.plans import cli as plan_cli

    for name in ("show", "draft", "apply", "history", "scores", "profile"):
        plan_app.command(name)(getattr(plan_cli, name))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _register_admin_commands() -> None:
    """Sub-groups owned by the API/registry side (kept apart from run/mosquitto-config)."""
    from controller.core.token_cli import tokens_app
    from controller.registry.cli import models_app
    from controller.registry.suite_cli import suites_app

    controller_app.add_typer(models_app, name="models")
    controller_app.add_typer(suites_app, name="suites")
    controller_app.add_typer(tokens_app, name="tokens")


_register_admin_commands()
_register_plan_commands()
