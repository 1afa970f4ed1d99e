"""``edgefleet devices list|show|enroll|enroll-many|revoke`` over the API."""

from __future__ import annotations

import csv
import sys
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
from controller.client.output import echo_json, echo_table, row_label

devices_app = typer.Typer(
    help=f"Enroll, list, inspect and revoke devices through the API. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

DeviceArg = Annotated[str, typer.Argument(help="device id")]
BULK_TIMEOUT_S = 600.0
"""A bulk enrollment hashes a password per device: 1,000 take seconds, more on a busy controller."""


@devices_app.command("list")
def list_devices(
    device_class: Annotated[str | None, typer.Option("--class", help="only this class")] = None,
    limit: LimitOption = 1000,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every device: status, class, model, last seen (viewer)."""
    with connect(url, token, client_config) as api:
        rows = api.items("/devices", limit, device_class=device_class)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "class", "status", "model", "last seen", "enrolled"),
        (
            (
                d["id"],
                d["device_class"],
                d["status"],
                row_label(d) if d["model_id"] else None,
                d["last_seen_at"],
                d["enrolled"],
            )
            for d in rows
        ),
    )


@devices_app.command("show")
def show(
    device_id: DeviceArg,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One device: hardware, state, latest heartbeat, cached models (viewer)."""
    with connect(url, token, client_config) as api:
        device = api.get(f"/devices/{device_id}")
    if as_json:
        echo_json(device)
        return
    echo_table(("field", "value"), _device_fields(device), title=f"device {device_id}")


def _device_fields(device: dict[str, Any]) -> list[tuple[str, Any]]:
    heartbeat = device.get("last_heartbeat") or {}
    cached = ", ".join(m.get("model_id", "?") for m in device.get("cached_models") or [])
    fields = [
        (key, device.get(key))
        for key in (
            "name",
            "device_class",
            "location",
            "status",
            "activity",
            "model_id",
            "strategy",
            "last_seen_at",
            "agent_version",
            "arch",
            "cores",
            "ram_total_mb",
            "enrolled",
        )
    ]
    fields += [
        (f"heartbeat.{key}", value)
        for key, value in sorted(heartbeat.items())
        if not isinstance(value, dict | list)
    ]
    return [*fields, ("cached models", cached)]


@devices_app.command("enroll")
def enroll(
    device_id: DeviceArg,
    device_class: Annotated[str, typer.Option("--class", help="its device class")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    location: Annotated[str | None, typer.Option(help="where the box is")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll a device and print its MQTT login, shown only now (operator)."""
    body = {"id": device_id, "device_class": device_class, "name": name, "location": location}
    with connect(url, token, client_config) as api:
        enrolled = api.call("POST", "/devices", json={k: v for k, v in body.items() if v})
    if as_json:
        echo_json(enrolled)
        return
    login = enrolled["credentials"]
    typer.echo(f"enrolled {device_id} ({device_class}); its MQTT login, shown only now:")
    typer.echo(f"  username: {login['username']}\n  password: {login['password']}")


BULK_COLUMNS = ("id", "device_class", "name", "location")


def _bulk_rows(source: typer.FileText) -> list[dict[str, str]]:
    """The CSV's devices: a header naming ``id`` and any of the other ``BULK_COLUMNS``."""
    try:
        reader = csv.DictReader(source)
        columns = set(reader.fieldnames or ())
        if "id" not in columns or columns - set(BULK_COLUMNS):
            raise CliError(
                ExitCode.USAGE,
                f"{source.name}: the header must name 'id' and only {', '.join(BULK_COLUMNS)}",
            )
        rows = []
        for row in reader:
            if None in row:
                raise CliError(
                    ExitCode.USAGE, f"{source.name}: line {reader.line_num} has extra fields"
                )
            rows.append({k: v for k, v in row.items() if v})
        return rows
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CliError(ExitCode.USAGE, f"{source.name}: not a CSV file ({exc})") from None


@devices_app.command("enroll-many")
def enroll_many(
    source: Annotated[
        typer.FileText, typer.Argument(help="CSV with a header: id[,device_class,name,location]")
    ],
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll up to 1,000 devices at once, all or none; print their logins as CSV (admin).

    The logins (device_id,username,password) are shown only now: redirect them to a
    file only the installer can read.
    """
    with connect(url, token, client_config) as api:
        devices = _bulk_rows(source)
        enrolled = api.call(
            "POST", "/devices/bulk", json={"devices": devices}, timeout=BULK_TIMEOUT_S
        )
    if as_json:
        echo_json(enrolled)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("device_id", "username", "password"))
    for entry in enrolled["enrolled"]:
        login = entry["credentials"]
        writer.writerow((entry["device"]["id"], login["username"], login["password"]))
    typer.echo(f"enrolled {len(enrolled['enrolled'])} devices; logins shown only now", err=True)


@devices_app.command("revoke")
def revoke(
    device_id: DeviceArg,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke the device's MQTT login; the broker refuses it from now on (operator)."""
    with connect(url, token, client_config) as api:
        revoked = api.call("DELETE", f"/devices/{device_id}/credentials")
    if as_json:
        echo_json(revoked)
        return
    typer.echo(f"revoked {revoked['revoked']} MQTT login(s) of {device_id}")
