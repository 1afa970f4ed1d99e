"""The root ``edgefleet`` command; its groups come from the ``edgefleet.cli`` entry points.

Each side (agent, controller) registers its own groups in pyproject.toml, so
this root imports neither and the dependency direction holds. A dotted name
``parent.child`` adds its callable as command ``child`` of the group ``parent``,
so one side can add a command to a group the other side registers.

Only the group a command line names is loaded (all of them for the root's own
help): ``edgefleet agent run`` on a 512 MB Pi must not import the controller's
database layer, which cost ~40 MB of resident memory and a second of start-up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points

import typer

ENTRY_POINT_GROUP = "edgefleet.cli"


def build_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """Assemble the root command from the entry points ``argv`` needs (None: all of them)."""
    app = typer.Typer(help="Run useful LLMs on a fleet of small devices.", no_args_is_help=True)

    @app.callback()
    def _root(
        verbose: bool = typer.Option(False, "--verbose", "-v", help="log at debug level"),
    ) -> None:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )

    add_entry_points(app, _needed(entry_points(group=ENTRY_POINT_GROUP), argv))
    return app


def _needed(entries: Iterable[EntryPoint], argv: Sequence[str] | None) -> list[EntryPoint]:
    """The entries of the group ``argv`` names first, or every entry if it names none."""
    entries = list(entries)
    named = next((arg for arg in argv or () if not arg.startswith("-")), None)
    wanted = [e for e in entries if e.name.split(".")[0] == named]
    return wanted or entries


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
    build_app(sys.argv[1:])()


if __name__ == "__main__":
    main()
