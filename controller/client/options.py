"""What every API command shares: the controller's URL, the token, ``--json``.

:func:`connect` turns a :class:`~controller.client.connection.CliError` into its message on
stderr and its exit code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from controller.client.connection import ApiClient, CliError, Target

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="controller URL [env EDGEFLEET_URL; default http://127.0.0.1:8000]"),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", help="API token [env EDGEFLEET_TOKEN]", show_default=False),
]
ClientConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--client-config",
        help="YAML file with 'url' and 'token' [env EDGEFLEET_CONFIG; default "
        "~/.config/edgefleet/client.yaml]",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="the API's JSON, for scripts")]
LimitOption = Annotated[int, typer.Option(min=1, max=100_000, help="at most this many rows")]


@contextmanager
def connect(url: str | None, token: str | None, config: Path | None) -> Iterator[ApiClient]:
    """An API client for the resolved target; a failure exits with its code and reason."""
    try:
        with ApiClient(Target.resolve(url, token, config)) as api:
            yield api
    except CliError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(int(exc.code)) from None
