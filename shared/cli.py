"""The root ``edgefleet`` command; its groups come from the ``edgefleet.cli`` entry points.

Each side (agent, controller) registers its own groups in pyproject.toml, so
this root imports neither and the dependency direction holds. A dotted name
``parent.child`` adds its callable as command ``child`` of the group ``parent``,
so one side can add a command to a group the other side registers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import typer

ENTRY_POINT_GROUP = "edgefleet.cli"


def build_app() -> typer.Typer:
    """Assemble the root command from the installed entry points."""
    app = typer.Typer(help="Run useful LLMs on a fleet of small devices.", no_args_is_help=True)

    @app.callback()
    def _root(
        verbose: bool = typer.Option(False, "--verbose", "-v", help="log at debug level"),
    ) -> None:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )

    add_entry_points(app, entry_points(group=ENTRY_POINT_GROUP))
    return app


def add_entry_points(app: typer.Typer, entries: Iterable[EntryPoint]) -> None:
    """Add groups (``name``) and commands of groups (``group.command``), groups first."""
    groups: dict[str, typer.Typer] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        parent, _, child = entry.name.rpartition(".")
        if not parent:
            groups[child] = entry.load()
            app.add_typer(groups[child], name=child)
        elif parent in groups:
            groups[parent].command(child)(entry.load())
        else:
            raise RuntimeError(
                f"entry point {entry.name!r} ({entry.value}) adds a command to group "
                f"{parent!r}, which no {ENTRY_POINT_GROUP} entry point registers"
            )


def main() -> None:
    """Console-script entry point."""
    build_app()()


if __name__ == "__main__":
    main()
