"""Command-line groups the controller side provides: ``controller`` and ``plan``."""

from __future__ import annotations

import typer

controller_app = typer.Typer(help="Run and administer the fleet controller.", no_args_is_help=True)
plan_app = typer.Typer(help="Show and apply model-to-device plans.", no_args_is_help=True)
