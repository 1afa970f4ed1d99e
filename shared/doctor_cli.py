"""``edgefleet doctor``: the command group; each side adds its host's checks to it.

``edgefleet doctor agent`` (a device) and ``edgefleet doctor controller`` (the operators'
server) print one table (or ``--json``) and exit 1 when any check failed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.doctor import CheckStatus, DoctorReport

doctor_app = typer.Typer(
    help="Check this host and say how to fix what is wrong.", no_args_is_help=True
)
console = Console()
STYLE = {CheckStatus.OK: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red"}
JsonOption = Annotated[bool, typer.Option("--json", help="print the report as JSON")]


def show(report: DoctorReport, as_json: bool) -> None:
    """Print the report (a table, or JSON) and exit 1 if any check failed."""
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        table = Table("check", "", "found", "fix", title=f"edgefleet doctor: {report.host}")
        for check in report.checks:
            style = STYLE[check.status]
            table.add_row(
                check.name, f"[{style}]{check.status.value}[/]", check.summary, check.fix or ""
            )
        console.print(table)
    if report.failed:
        raise typer.Exit(1)
