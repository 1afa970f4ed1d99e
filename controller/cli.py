"""Command-line groups the controller side provides: ``controller`` and ``plan``."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
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
    from controller.runtime import ControllerRuntime

    settings = _settings(config)
    runtime = ControllerRuntime(settings).start()
    try:
        app = _create_app(settings)
        if app is None:
            _wait_for_signal()
        else:
            import uvicorn

            app.state.runtime = runtime
            uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")
    finally:
        runtime.stop()


def _create_app(settings: Any) -> Any:
    try:
        module = importlib.import_module("controller.app")
    except ModuleNotFoundError as exc:
        if exc.name != "controller.app":
            raise
        logger.warning("controller.app is not available: running broker and ingest without HTTP")
        return None
    return module.create_app(settings)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logger.info("controller running; Ctrl-C to stop")
    stop.wait()


def _register_admin_commands() -> None:
    """Sub-groups owned by the API/registry side (kept apart from run/mosquitto-config)."""
    from controller.core.token_cli import tokens_app
    from controller.registry.cli import models_app

    controller_app.add_typer(models_app, name="models")
    controller_app.add_typer(tokens_app, name="tokens")


_register_admin_commands()
