"""What every controller command shares: the ``--config`` option and opening settings and DB."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from controller.core.config import ControllerSettings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (env EDGEFLEET_CONTROLLER_* wins over it)"
    ),
]


def load_cli_settings(config: Path | None, **overrides: Any) -> ControllerSettings:
    """Settings from the file and environment; a bad value exits with code 2 and the reason."""
    from pydantic import ValidationError

    from controller.core.config import load_settings
    from shared.settings import describe

    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except (ValueError, FileNotFoundError) as exc:
        reason = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        typer.echo(f"invalid controller settings: {reason}", err=True)
        raise typer.Exit(2) from None


def migrated_engine(settings: ControllerSettings) -> Engine:
    """An engine on the configured database, migrated to the current schema."""
    from controller.core.db import create_db_engine, migrate

    engine = create_db_engine(settings.db_url)
    migrate(engine)
    return engine


def open_cli_engine(config: Path | None) -> tuple[ControllerSettings, Engine]:
    """Settings and a migrated engine, for commands that work without the server."""
    settings = load_cli_settings(config)
    return settings, migrated_engine(settings)
