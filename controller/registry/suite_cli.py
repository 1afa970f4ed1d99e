"""``edgefleet controller suites ...``: evaluation suites from the command line (no server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from controller.core.cli_options import ConfigOption, open_cli_engine
from controller.models import Suite

suites_app = typer.Typer(
    help="Upload, list, show and delete evaluation suites.", no_args_is_help=True
)


@contextmanager
def _session(config: Path | None) -> Iterator[Session]:
    _, engine = open_cli_engine(config)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


@suites_app.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(help="the suite file (JSON lines)")],
    suite_id: Annotated[str | None, typer.Option("--id", help="id (default: file stem)")] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a suite file and store it; a bad file is refused with one error per bad line."""
    from controller.registry.suites import SuiteConflict, add_suite
    from shared.suites.suite import MAX_SUITE_BYTES, SuiteError

    if path.stat().st_size > MAX_SUITE_BYTES:
        raise _fail(f"{path}: a suite holds at most {MAX_SUITE_BYTES} bytes")
    with _session(config) as session:
        try:
            suite = add_suite(session, suite_id or path.stem, path.read_bytes(), created_by="cli")
        except SuiteError as exc:
            raise _fail("\n".join(f"{path}: {e}" for e in exc.errors)) from None
        except SuiteConflict as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"{suite.id}  version {suite.version}  sha256={suite.sha256}  {_counts(suite)}")


@suites_app.command("list")
def list_suites(config: ConfigOption = None) -> None:
    """Every suite: id, version, items per type, sha256."""
    with _session(config) as session:
        rows = session.exec(select(Suite).order_by(col(Suite.id))).all()
    if not rows:
        typer.echo("no suites")
    for row in rows:
        typer.echo(f"{row.id}\tv{row.version}\t{_counts(row)}\t{row.sha256[:12]}")


@suites_app.command("show")
def show(suite_id: Annotated[str, typer.Argument()], config: ConfigOption = None) -> None:
    """One suite's description and its items' ids, types and categories."""
    from shared.suites.suite import parse_suite

    with _session(config) as session:
        suite = session.get(Suite, suite_id)
    if suite is None:
        raise _fail(f"suite {suite_id!r} not found")
    typer.echo(f"{suite.id}  version {suite.version}  sha256={suite.sha256}  {_counts(suite)}")
    if suite.description:
        typer.echo(suite.description)
    for item in parse_suite(suite.content, name=suite.id).items:
        typer.echo(f"  {item.id}\t{item.type}\t{item.category}")


@suites_app.command("delete")
def delete(suite_id: Annotated[str, typer.Argument()], config: ConfigOption = None) -> None:
    """Delete a suite (results measured on it keep its name and sha256)."""
    with _session(config) as session:
        suite = session.get(Suite, suite_id)
        if suite is None:
            raise _fail(f"suite {suite_id!r} not found")
        session.delete(suite)
        session.commit()
    typer.echo(f"deleted {suite_id}")


def _counts(suite: Suite) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(suite.counts.items()))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)
