"""``edgefleet commands send|list``: identify, bench or assign devices, and follow the acks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from controller.client.connection import EXIT_CODES_HELP, CliError, ExitCode
from controller.client.options import (
    ClientConfigOption,
    JsonOption,
    LimitOption,
    TokenOption,
    UrlOption,
    connect,
)
from controller.client.output import echo_json, echo_table

commands_app = typer.Typer(
    help=f"Send commands to devices and list them with their acks. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)


class Kind(StrEnum):
    """The commands a device understands."""

    IDENTIFY = "identify"
    BENCH = "bench"
    ASSIGN = "assign"


def _command(
    kind: Kind, models: list[str], refine: bool, strategy: str | None, seconds: float
) -> dict[str, Any]:
    if kind is Kind.IDENTIFY:
        return {"type": "identify", "seconds": seconds}
    if kind is Kind.ASSIGN:
        if len(models) != 1:
            raise CliError(ExitCode.API_ERROR, "assign needs exactly one --model")
        return {"type": "assign", "model_id": models[0], "refine": refine, "strategy": strategy}
    names = [n.strip() for n in (strategy or "").split(",") if n.strip()]
    return {"type": "bench", "model_ids": models, "refine": refine, "strategies": names}


@commands_app.command("send")
def send(
    kind: Annotated[Kind, typer.Argument(help="identify, bench or assign")],
    device_id: Annotated[str | None, typer.Option("--device", help="one device")] = None,
    device_class: Annotated[
        str | None, typer.Option("--class", help="every device of a class")
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--model", help="model id (repeat for bench)")
    ] = None,
    refine: Annotated[bool, typer.Option(help="with self-refinement (refine:1)")] = False,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="assign: the strategy to serve with (direct, refine:K, verify-refine, "
            "vote:K); bench: a comma-separated list to measure beside direct"
        ),
    ] = None,
    seconds: Annotated[float, typer.Option(min=0.1, max=600, help="identify: blink time")] = 10,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a command to --device or to every device of --class (operator)."""
    if (device_id is None) == (device_class is None):
        typer.echo("error: give exactly one of --device or --class", err=True)
        raise typer.Exit(2)
    with connect(url, token, client_config) as api:
        body = {
            "device_id": device_id,
            "device_class": device_class,
            "command": _command(kind, models or [], refine, strategy, seconds),
        }
        sent = api.call("POST", "/commands", json={k: v for k, v in body.items() if v})
    if as_json:
        echo_json(sent)
        return
    echo_table(
        ("command", "device", "type", "status"),
        ((c["id"], c["device_id"], c["type"], c["status"]) for c in sent["commands"]),
    )
    for failure in sent["failed"]:
        typer.echo(f"not sent to {failure['device_id']}: {failure['reason']}", err=True)
    if sent["failed"]:
        raise typer.Exit(int(ExitCode.API_ERROR))


@commands_app.command("list")
def list_commands(
    device_id: Annotated[str | None, typer.Option("--device", help="one device")] = None,
    limit: LimitOption = 50,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Commands, newest first, with their status and the device's reason (viewer)."""
    with connect(url, token, client_config) as api:
        rows = api.items("/commands", limit, device_id=device_id)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("command", "device", "type", "status", "reason", "created", "acked", "by"),
        (
            (
                c["id"],
                c["device_id"],
                c["type"],
                c["status"],
                c["reason"],
                c["created_at"],
                c["acked_at"],
                c["created_by"],
            )
            for c in rows
        ),
    )
