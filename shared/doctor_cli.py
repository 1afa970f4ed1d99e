"""``edgefleet doctor``: the command group; each side adds its host's checks to it.

``edgefleet doctor agent`` (a device) and ``edgefleet doctor controller`` (the operators'
server) print one table (or ``--json``) and exit 1 when any check failed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shared.doctor import CheckStatus, DoctorReport

doctor_app = typer.Typer(
    help="Check this host and say how to fix what is wrong.", no_args_is_help=True
)
COLOUR = {CheckStatus.OK: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red"}
JsonOption = Annotated[bool, typer.Option("--json", help="print the report as JSON")]


def show(report: DoctorReport, as_json: bool) -> None:
    """Print the report (one line a check, or JSON) and exit 1 if any check failed."""
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(f"edgefleet doctor: {report.host}")
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            status = typer.style(f"{check.status.value:<4}", fg=COLOUR[check.status], bold=True)
            typer.echo(f"  {status}  {check.name:<{width}}  {check.summary}")
            if check.fix:
                typer.echo(f"  {'':<4}  {'':<{width}}  fix: {check.fix}")
    if report.failed:
        raise typer.Exit(1)
