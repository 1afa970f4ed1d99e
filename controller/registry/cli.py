"""``edgefleet controller models ...``: the registry from the command line (no server needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from controller.core.cli_options import ConfigOption, open_cli_engine
from controller.registry.store import ModelStore

models_app = typer.Typer(
    help="Import, list, inspect and delete registry models.", no_args_is_help=True
)


@contextmanager
def _registry(config: Path | None) -> Iterator[tuple[Session, ModelStore]]:
    """(session, store) over the configured database and model directory."""
    settings, engine = open_cli_engine(config)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session, ModelStore(settings.models_dir)
    finally:
        engine.dispose()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@models_app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(help="the GGUF file to import")],
    model_id: Annotated[
        str | None, typer.Option("--id", help="registry id (default: stem)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    description: Annotated[str, typer.Option(help="notes for operators")] = "",
    config: ConfigOption = None,
) -> None:
    """Copy a GGUF into the registry (streamed, sha256-verified, header checked)."""
    from controller.registry import service
    from controller.registry.store import RegistryError

    with _registry(config) as (session, store):
        try:
            stored = store.import_path(path)
            model = service.register(
                session,
                stored,
                model_id=model_id or path.stem,
                name=name,
                description=description,
                filename=path.name,
            )
        except RegistryError as exc:
            raise _fail(f"{path}: {exc.detail}") from None
        except service.ModelConflict as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"{model.id}  sha256={model.sha256}  {model.size_bytes} bytes")
    typer.echo(
        f"  {model.architecture} {model.quantization}, {model.parameters} parameters, "
        f"~{model.memory_estimate_mb:.0f} MB at n_ctx={model.memory_estimate_n_ctx}"
    )


@models_app.command("list")
def list_models(config: ConfigOption = None) -> None:
    """Every registry model: id, quantization, size, memory estimate."""
    from sqlmodel import col, select

    from controller.models import Model

    with _registry(config) as (session, _):
        rows = session.exec(select(Model).order_by(col(Model.id))).all()
    if not rows:
        typer.echo("no models in the registry")
    for row in rows:
        typer.echo(
            f"{row.id}\t{row.quantization}\t{row.size_bytes / 1e6:.1f} MB\t"
            f"~{row.memory_estimate_mb or 0:.0f} MB RAM\t{row.sha256[:12]}"
        )


@models_app.command("delete")
def delete_model(
    model_id: Annotated[str, typer.Argument(help="registry id")], config: ConfigOption = None
) -> None:
    """Delete a model and its file; refused while devices, plans or pins use it."""
    from controller.models import Model
    from controller.registry import service

    with _registry(config) as (session, store):
        model = session.get(Model, model_id)
        if model is None:
            raise _fail(f"model {model_id!r} not found")
        try:
            service.delete(session, store, model)
        except service.ModelConflict as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"deleted {model_id}")
