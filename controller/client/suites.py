"""``edgefleet suites list|show|upload|rm``: evaluation suites over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from shared.suites.suite import MAX_SUITE_BYTES

suites_app = typer.Typer(
    help=f"Upload, list, inspect and delete evaluation suites through the API. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

SuiteArg = Annotated[str, typer.Argument(help="suite id")]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


@suites_app.command("list")
def list_suites(
    limit: LimitOption = 500,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every suite: id, version, items per type, sha256 (viewer)."""
    with connect(url, token, client_config) as api:
        rows = api.items("/suites", limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "version", "items", "sha256", "created", "by"),
        (
            (s["id"], s["version"], _counts(s["counts"]), s["sha256"][:12], s["created_at"],
             s["created_by"])
            for s in rows
        ),
    )  # fmt: skip


@suites_app.command("show")
def show(
    suite_id: SuiteArg,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One suite's description and its items: id, type, category (viewer)."""
    with connect(url, token, client_config) as api:
        suite = api.get(f"/suites/{suite_id}")
    if as_json:
        echo_json(suite)
        return
    typer.echo(f"{suite['id']} v{suite['version']}: {suite['description'] or '-'}")
    echo_table(
        ("item", "type", "category"),
        ((i["id"], i["type"], i["category"]) for i in suite["items"]),
    )


@suites_app.command("upload")
def upload(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="a suite JSONL file")
    ],
    suite_id: Annotated[str | None, typer.Option("--id", help="suite id (default: stem)")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a suite; a bad file is refused whole, one error per bad line (operator)."""
    with connect(url, token, client_config) as api:
        if path.stat().st_size > MAX_SUITE_BYTES:  # the API refuses it too; do not read it
            raise CliError(ExitCode.USAGE, f"{path}: a suite holds at most {MAX_SUITE_BYTES} bytes")
        suite = api.call(
            "POST",
            "/suites",
            params={"suite_id": suite_id or path.stem},
            content=path.read_bytes(),
            headers={"content-type": "application/x-ndjson"},
        )
    if as_json:
        echo_json(suite)
        return
    typer.echo(f"{suite['id']}  version {suite['version']}  sha256={suite['sha256']}")


@suites_app.command("rm")
def remove(
    suite_id: SuiteArg,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
) -> None:
    """Delete a suite; results measured on it keep its name and sha256 (operator)."""
    with connect(url, token, client_config) as api:
        api.call("DELETE", f"/suites/{suite_id}")
    typer.echo(f"deleted {suite_id}")
