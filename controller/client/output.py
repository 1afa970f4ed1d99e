"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from shared.strategies import option_label


def echo_json(data: Any) -> None:
    """The API's JSON, indented."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> None:
    """An aligned table; cells are printed as text (never as markup)."""
    table = Table(
        *headers,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title=title or None,
        title_justify="left",
    )
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    width = shutil.get_terminal_size((160, 24)).columns
    Console(width=width, markup=False, highlight=False, emoji=False).print(table)


def cell(value: Any) -> str:
    """One value as table text: '-' for nothing, short timestamps, 3 significant digits."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            return value
    return str(value)


def megabytes(size_bytes: int | None) -> str:
    """A byte count in MB."""
    return "-" if size_bytes is None else f"{size_bytes / 1e6:.1f} MB"


def row_label(row: dict[str, Any]) -> str:
    """The option an API row names (``model``, ``model vote:5``; ``-``: none)."""
    return option_label(row.get("model_id"), row.get("strategy"), row.get("refine"))
