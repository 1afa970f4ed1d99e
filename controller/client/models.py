"""``edgefleet models list|import|rm`` over the API (upload streamed with a progress bar).

The commands join the agent's ``models`` group (``fetch-demo``) through dotted
``edgefleet.cli`` entry points; see shared/cli.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from controller.client.options import (
    ClientConfigOption,
    JsonOption,
    LimitOption,
    TokenOption,
    UrlOption,
    connect,
)
from controller.client.output import echo_json, echo_table, megabytes

CHUNK_BYTES = 1 << 20
UPLOAD_TIMEOUT_S = 3600.0  # a multi-GB GGUF over a slow LAN

ModelArg = Annotated[str, typer.Argument(help="registry model id")]


def list_models(
    limit: LimitOption = 1000,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The controller's registry: id, architecture, quantisation, size, memory (viewer)."""
    with connect(url, token, client_config) as api:
        rows = api.items("/models", limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "architecture", "quant", "parameters", "size", "memory est.", "sha256"),
        (
            (
                m["id"],
                m["architecture"],
                m["quantization"],
                m["parameters"],
                megabytes(m["size_bytes"]),
                f"{m['memory_estimate_mb']:.0f} MB" if m["memory_estimate_mb"] else None,
                m["sha256"][:12],
            )
            for m in rows
        ),
    )


def import_model(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="a GGUF file")
    ],
    model_id: Annotated[
        str | None, typer.Option("--id", help="registry id (default: stem)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    description: Annotated[str, typer.Option(help="notes for operators")] = "",
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a GGUF with a progress bar; the controller hashes and checks it (operator)."""
    params = {"model_id": model_id or path.stem, "description": description}
    if name:
        params["name"] = name
    with connect(url, token, client_config) as api, _progress(as_json) as progress:
        task = progress.add_task(path.name, total=path.stat().st_size)
        model = api.call(
            "POST",
            "/models/upload",
            params=params,
            content=_chunks(path, lambda n: progress.advance(task, n)),
            headers={"content-type": "application/octet-stream"},
            timeout=UPLOAD_TIMEOUT_S,
        )
    if as_json:
        echo_json(model)
        return
    typer.echo(f"{model['id']}  sha256={model['sha256']}  {megabytes(model['size_bytes'])}")


def _progress(quiet: bool) -> Progress:
    """A bar on stderr (stdout stays clean for --json); hidden when quiet."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=False,
    )


def _chunks(path: Path, sent: Callable[[int], object]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
            sent(len(chunk))


def remove(
    model_id: ModelArg,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
) -> None:
    """Delete a model and its file; refused while devices, plans or pins use it (operator)."""
    with connect(url, token, client_config) as api:
        api.call("DELETE", f"/models/{model_id}")
    typer.echo(f"deleted {model_id}")
