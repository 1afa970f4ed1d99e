"""``edgefleet controller tokens create``: an API token written straight into the database.

The one direct-database token command, kept because the API cannot help before you hold a
token: the first admin token on a controller started without the bootstrap one, or after
every admin token was lost. Everything else about tokens goes through the API
(``edgefleet tokens list|create|revoke``, admin role).
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.core.cli_options import ConfigOption, open_cli_engine
from controller.models import Role

tokens_app = typer.Typer(
    help="Bootstrap an API token directly in the controller's database (on the controller "
    "host, with its config). With a token, use `edgefleet tokens ...` over the API instead.",
    no_args_is_help=True,
)


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="who or what the token is for")],
    role: Annotated[
        Role, typer.Option(help="client (may only chat), viewer, operator or admin")
    ] = Role.VIEWER,
    config: ConfigOption = None,
) -> None:
    """Create a token in the database and print it once (only its hash is stored)."""
    from sqlmodel import Session

    from controller.core.security import create_api_token

    _, engine = open_cli_engine(config)
    with Session(engine) as session:
        row, secret = create_api_token(session, name=name, role=role, created_by="cli")
    engine.dispose()
    typer.echo(f"token {row.id} ({row.role}) for {name}; shown only now:")
    typer.echo(secret)
