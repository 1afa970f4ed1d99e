"""``edgefleet controller tokens ...``: API tokens from the command line (no server needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.core.cli_options import ConfigOption, open_cli_engine
from controller.models import Role

tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="who or what the token is for")],
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")] = Role.VIEWER,
    config: ConfigOption = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from sqlmodel import Session

    from controller.core.security import create_api_token

    _, engine = open_cli_engine(config)
    with Session(engine) as session:
        row, secret = create_api_token(session, name=name, role=role, created_by="cli")
    engine.dispose()
    typer.echo(f"token {row.id} ({row.role}) for {name}; shown only now:")
    typer.echo(secret)


@tokens_app.command("list")
def list_tokens(config: ConfigOption = None) -> None:
    """Every token: id, role, name, prefix, revoked or not (never the secret)."""
    from sqlmodel import Session, col, select

    from controller.models import ApiToken

    _, engine = open_cli_engine(config)
    with Session(engine) as session:
        rows = session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()
    engine.dispose()
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        typer.echo(f"{row.id}\t{row.role}\t{row.name}\t{row.prefix}…\t{state}")


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="token id (see list)")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token (running controllers stop accepting it within seconds)."""
    from sqlmodel import Session

    from controller.models import ApiToken, utcnow

    _, engine = open_cli_engine(config)
    with Session(engine) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            typer.echo(f"error: token {token_id} not found", err=True)
            raise typer.Exit(1)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            session.add(row)
            session.commit()
    engine.dispose()
    typer.echo(f"revoked token {token_id}")
