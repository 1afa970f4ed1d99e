"""``edgefleet plan show|draft|apply|history|profile`` over the API."""

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

plan_app = typer.Typer(
    help=f"Show, draft, apply and profile model-to-device plans through the API. {EXIT_CODES_HELP}",
    no_args_is_help=True,
)

ReasonsOption = Annotated[bool, typer.Option("--reasons", help="why every other option lost")]


def echo_plan(detail: dict[str, Any], heading: str, *, reasons: bool) -> None:
    """A plan's summary and one row per device (with --reasons, every reason)."""
    typer.echo(f"{heading}: {detail['plan']['summary']}")
    echo_table(
        ("device", "class", "status", "model", "Psi", "why"),
        (
            (
                row["device_id"],
                row["device_class"],
                row["status"],
                row_label(row),
                None if row["score"] is None else f"{row['score']:.4f}",
                "\n".join(row["reasons"]) if reasons else row["reasons"][0],
            )
            for row in detail["assignments"]
        ),
    )


@plan_app.command("show")
def show(
    reasons: ReasonsOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dry run: what each device would run now; stores nothing (viewer)."""
    with connect(url, token, client_config) as api:
        detail = api.get("/plans/draft")
    if as_json:
        echo_json(detail)
        return
    echo_plan(detail, "dry run, not stored", reasons=reasons)


@plan_app.command("draft")
def draft(
    reasons: ReasonsOption = False,
    max_changes: Annotated[
        int | None, typer.Option(min=0, help="move at most this many devices")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute and store a draft (the older draft is superseded) for `plan apply` (operator)."""
    body = {} if max_changes is None else {"max_changes": max_changes}
    with connect(url, token, client_config) as api:
        detail = api.call("POST", "/plans/draft", json=body)
    if as_json:
        echo_json(detail)
        return
    echo_plan(detail, f"plan {detail['plan']['id']} (draft)", reasons=reasons)


@plan_app.command("apply")
def apply(
    plan_id: Annotated[int, typer.Argument(min=1, help="the draft to apply")],
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply a draft in waves, a canary per class first, rolled back if a wave fails (operator).

    Follow the rollout with `plan history` or the dashboard.
    """
    with connect(url, token, client_config) as api:
        applied = api.call("POST", "/plans", json={"plan_id": plan_id})
    if as_json:
        echo_json(applied)
        return
    typer.echo(applied["message"])
    echo_plan(applied, f"plan {plan_id}", reasons=False)


@plan_app.command("history")
def history(
    limit: Annotated[int, typer.Option(min=1, max=500, help="how many plans")] = 20,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Plans, newest first, with status and summary (viewer)."""
    with connect(url, token, client_config) as api:
        plans = api.get("/plans", limit=limit)
    if as_json:
        echo_json(plans)
        return
    echo_table(
        ("id", "status", "created", "by", "summary"),
        ((p["id"], p["status"], p["created_at"], p["created_by"], p["summary"]) for p in plans),
    )


@plan_app.command("profile")
def profile(
    limit: Annotated[int, typer.Option(min=1, max=100, help="most bench commands to send")] = 5,
    device_class: Annotated[str | None, typer.Option("--class", help="this class only")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    client_config: ClientConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bench the model and class pairs whose measurement could change the plan (operator)."""
    body: dict[str, Any] = {"limit": limit, "device_class": device_class}
    with connect(url, token, client_config) as api:
        round_ = api.call("POST", "/profiling", json=body)
    if as_json:
        echo_json(round_)
        return
    typer.echo(round_["message"])
    echo_table(
        ("device", "class", "model", "status", "command", "why"),
        (
            (
                s["device_id"],
                s["device_class"],
                s["model_id"],
                s["status"],
                s["command_id"],
                s["reason"],
            )
            for s in round_["sent"]
        ),
    )
