"""``edgefleet scores``: the PeRFICS leaderboard per device class, over the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from controller.client.connection import EXIT_CODES_HELP
from controller.client.options import (
    ClientConfigOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
)
from controller.client.output import echo_json, echo_table, row_label

scores_app = typer.Typer(help="The PeRFICS leaderboard per device class (viewer).")


@scores_app.callback(invoke_without_command=True, help=f"Show the leaderboard. {EXIT_CODES_HELP}")
def scores(
    device_class: Annotated[str | None, typer.Option("--class", help="one class only")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Psi, B and I with 95 % intervals, C, n; predicted and pooled rows are marked."""
    with connect(url, token, client_config) as api:
        board = api.get("/scores", device_class=device_class)
    if as_json:
        echo_json(board)
        return
    for cls, rows in board["classes"].items():
        echo_table(
            ("model", "Psi", "B [95% CI]", "I [95% CI]", "C", "n", "flags"),
            (_row(r) for r in rows),
            title=cls,
        )


def _interval(value: float, ci: list[float] | None, sign: str = "") -> str:
    text = f"{value:{sign}.3f}"
    return f"{text} [{ci[0]:{sign}.3f}, {ci[1]:{sign}.3f}]" if ci else text


def _row(r: dict[str, Any]) -> tuple[Any, ...]:
    marks = (
        ("predicted", r["predicted"]),
        ("pooled", r["quality_pooled"]),
        ("B ties next", r.get("B_overlaps_next")),  # intervals overlap: the order is unsure
    )
    flags = " ".join(f for f, on in marks if on)
    return (
        row_label(r),
        f"{r['psi']:.4f}",
        _interval(r["B"], r.get("B_ci")),
        _interval(r["I"], r.get("I_ci"), "+"),
        f"{r['C']:.3f}",
        r["n_questions"],
        flags,
    )
