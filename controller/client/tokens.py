"""``edgefleet tokens list|create|revoke``: API tokens over the API (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.client.connection import EXIT_CODES_HELP
from controller.client.options import (
    ClientConfigOption,
    JsonOption,
    LimitOption,
    TokenOption,
    UrlOption,
    connect,
)
from controller.client.output import echo_json, echo_table

tokens_app = typer.Typer(
    help="Create, list and revoke API tokens through the API (admin). The first admin token "
    f"comes from the controller's first start or `edgefleet controller tokens create`. "
    f"{EXIT_CODES_HELP}",
    no_args_is_help=True,
)


@tokens_app.command("list")
def list_tokens(
    limit: LimitOption = 500,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every token: id, role, name, prefix, last use, revoked (never the secret)."""
    with connect(url, token, client_config) as api:
        rows = api.items("/tokens", limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "role", "name", "prefix", "created", "last used", "revoked"),
        (
            (
                t["id"],
                t["role"],
                t["name"],
                t["prefix"] + "…",
                t["created_at"],
                t["last_used_at"],
                t["revoked_at"],
            )
            for t in rows
        ),
    )


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="who or what the token is for")],
    role: Annotated[
        str,
        typer.Option(help="client (may only chat through the gateway), viewer, operator or admin"),
    ] = "viewer",
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it once (the controller keeps only its hash)."""
    with connect(url, token, client_config) as api:
        created = api.call("POST", "/tokens", json={"name": name, "role": role})
    if as_json:
        echo_json(created)
        return
    typer.echo(f"token {created['id']} ({created['role']}) for {name}; shown only now:")
    typer.echo(created["token"])


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(min=1, help="token id (see list)")],
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
) -> None:
    """Revoke a token; the controller stops accepting it within seconds."""
    with connect(url, token, client_config) as api:
        api.call("DELETE", f"/tokens/{token_id}")
    typer.echo(f"revoked token {token_id}")
