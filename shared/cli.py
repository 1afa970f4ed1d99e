"""The root ``edgefleet`` command; its groups come from the ``edgefleet.cli`` entry points.

Each side (agent, controller) registers its own groups in pyproject.toml, so
this root imports neither and the dependency direction holds.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

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

    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        app.add_typer(entry.load(), name=entry.name)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()


if __name__ == "__main__":
    main()
