"""The root command: groups from the edgefleet.cli entry points, dotted names add commands."""

import subprocess
import sys
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


def test_the_models_group_holds_the_agents_and_the_api_clients_commands() -> None:
    models = get_command(build_app(["models"])).commands["models"]  # type: ignore[attr-defined]
    assert {"fetch-demo", "list", "import", "rm"} <= set(models.commands)


ROOT_HELP_GROUPS = (
    "agent",
    "controller",
    "demo",
    "plan",
    "devices",
    "models",
    "scores",
    "commands",
    "tokens",
    "suites",
)


@pytest.mark.parametrize(
    ("argv", "controller_loaded"),
    [(["agent", "--help"], False), (["-v", "bench", "--help"], False), (["--help"], True)],
)
def test_only_the_named_group_is_imported(argv: list[str], controller_loaded: bool) -> None:
    """An agent's command line never imports the controller (memory on a small Pi)."""
    probe = (
        "import sys\n"
        "from shared.cli import build_app\n"
        "from typer.main import get_command\n"
        f"groups = sorted(get_command(build_app({argv!r})).commands)\n"
        "print(groups, 'controller' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    groups, loaded = done.stdout.rsplit(" ", 1)
    assert loaded.strip() == str(controller_loaded)
    if controller_loaded:
        assert all(g in groups for g in ROOT_HELP_GROUPS), groups
    else:
        assert groups.count("'") == 2, groups  # exactly the one named group
