"""The root command: groups from the edgefleet.cli entry points, dotted names add commands."""

from importlib.metadata import EntryPoint

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from shared.cli import ENTRY_POINT_GROUP, add_entry_points, build_app

tools = typer.Typer()


@tools.command()
def hammer() -> None:
    """Hit things."""
    typer.echo("hammer")


def saw(length: int = typer.Option(3, help="how far")) -> None:
    """Cut things."""
    typer.echo(f"saw {length}")


def _entry(name: str, attribute: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{attribute}", group=ENTRY_POINT_GROUP)


def test_a_dotted_name_adds_a_command_to_the_group_whatever_the_listed_order() -> None:
    app = typer.Typer()
    add_entry_points(app, [_entry("tools.saw", "saw"), _entry("tools", "tools")])

    runner = CliRunner()
    assert runner.invoke(app, ["tools", "hammer"]).stdout == "hammer\n"
    assert runner.invoke(app, ["tools", "saw", "--length", "7"]).stdout == "saw 7\n"


def test_a_dotted_name_without_its_group_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="'tools.saw'.*group 'tools'"):
        add_entry_points(typer.Typer(), [_entry("tools.saw", "saw")])


def test_the_installed_entry_points_give_demo_run_and_fleet() -> None:
    demo = get_command(build_app()).commands["demo"]  # type: ignore[attr-defined]

    assert {"run", "fleet"} <= set(demo.commands), (
        "stale entry points: `pip install -e . --no-deps` rewrites them"
    )
    fleet_options = {opt for param in demo.commands["fleet"].params for opt in param.opts}
    assert {"--json", "--keep-running", "--data-dir", "--api-port", "--question"} <= fleet_options
    assert {"--max-questions", "--max-tokens"} <= fleet_options
