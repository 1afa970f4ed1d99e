"""The ``controller`` command group: run the controller and what needs its host and config.

The fleet itself (devices, models, plans, scores, commands, tokens) is driven over the API
from any machine: see :mod:`controller.client`.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from controller.core.cli_options import ConfigOption, load_cli_settings, migrated_engine
from controller.core.token_cli import tokens_app

controller_app = typer.Typer(help="Run and administer the fleet controller.", no_args_is_help=True)
controller_app.add_typer(tokens_app, name="tokens")

logger = logging.getLogger(__name__)


@controller_app.command("mosquitto-config")
def mosquitto_config(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="directory for the files")] = None,
) -> None:
    """Write mosquitto.conf and the password and ACL files of both listeners from the registry."""
    from controller.enrollment import Enrollment

    settings = load_cli_settings(config)
    if settings.mqtt_password is None:
        typer.echo("set EDGEFLEET_CONTROLLER_MQTT_PASSWORD (the controller's MQTT login)", err=True)
        raise typer.Exit(2)
    engine = migrated_engine(settings)
    files = Enrollment(engine, settings).sync_broker_files(directory=out)
    engine.dispose()
    if files is None:
        typer.echo("could not write the Mosquitto files (see the log above)", err=True)
        raise typer.Exit(1)
    typer.echo(f"config:    {files.config}\npasswords: {files.passwords}\nacl:       {files.acl}")
    typer.echo(f"controller listener: {files.controller_passwords}, {files.controller_acl}")
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
            ingest=runtime.ingest,
            enrollment=runtime.enrollment,
            migrate_db=False,  # the runtime migrated before starting ingest
        )
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn that into a normal
        # exit so the runtime below still stops (ingest drained, broker closed)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")
    finally:
        runtime.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)
