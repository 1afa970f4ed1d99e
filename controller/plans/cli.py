"""``edgefleet plan show|draft|history|scores|apply|profile``: the planner from a terminal.

Registered on ``controller.cli:plan_app``. ``apply`` and ``profile`` publish
through the configured external broker (``broker_url``); the running
controller's ingest stores the acks, metrics and bench results they lead to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.core.cli_options import ConfigOption, open_cli_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from controller.core.config import ControllerSettings
    from controller.ingest.commands import CommandPublisher

ReasonsOption = Annotated[bool, typer.Option("--reasons", help="why every other option lost")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def show(
    config: ConfigOption = None, reasons: ReasonsOption = False, as_json: JsonOption = False
) -> None:
    """Dry run: what each device would run now, against what runs now; stores nothing."""
    from controller.plans.service import dry_run_plan

    _, engine = open_cli_engine(config)
    detail = dry_run_plan(engine, created_by="cli")
    engine.dispose()
    _echo_plan(detail, "dry run, not stored", reasons=reasons, as_json=as_json)


def draft(
    config: ConfigOption = None, reasons: ReasonsOption = False, as_json: JsonOption = False
) -> None:
    """Compute and store a draft (the older draft is superseded) for `plan apply`."""
    from sqlmodel import Session

    from controller.plans.service import draft_plan, plan_detail

    _, engine = open_cli_engine(config)
    plan_id = draft_plan(engine, created_by="cli")
    with Session(engine) as session:
        detail = plan_detail(session, plan_id)
    engine.dispose()
    assert detail is not None
    _echo_plan(detail, f"plan {plan_id} (draft)", reasons=reasons, as_json=as_json)


def _echo_plan(detail: dict[str, Any], heading: str, *, reasons: bool, as_json: bool) -> None:
    """A plan's summary and one line per device (its reasons indented below with --reasons)."""
    if as_json:
        typer.echo(json.dumps(detail, indent=2))
        return
    typer.echo(f"{heading}: {detail['plan']['summary']}")
    for row in detail["assignments"]:
        target = row["model_id"] or "-"
        target += " +refine" if row["refine"] and row["model_id"] else ""
        score = f"{row['score']:.4f}" if row["score"] is not None else "-"
        typer.echo(
            f"{row['device_id']:<24} {row['device_class'] or '':<16} {row['status']:<10} "
            f"{target:<32} Psi {score}  ({row['reasons'][0]})"
        )
        if reasons:
            for line in row["reasons"][1:]:
                typer.echo(f"    {line}")


def history(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(help="how many plans")] = 20,
) -> None:
    """List plans, newest first, with status and summary."""
    from sqlmodel import Session

    from controller.plans.service import plan_history

    _, engine = open_cli_engine(config)
    with Session(engine) as session:
        plans = plan_history(session, limit)
        for plan in plans:
            typer.echo(
                f"{plan.id:>5} {plan.status:<11} {plan.created_at:%Y-%m-%d %H:%M:%S} {plan.summary}"
            )
            for reason in plan.reasons[1:]:
                typer.echo(f"      {reason}")
    engine.dispose()


def scores(
    config: ConfigOption = None,
    device_class: Annotated[str | None, typer.Option("--class", help="one class only")] = None,
) -> None:
    """Show the PeRFICS leaderboard per device class."""
    from controller.plans.service import leaderboard

    _, engine = open_cli_engine(config)
    board = leaderboard(engine)
    engine.dispose()
    for cls, rows in board.items():
        if device_class and cls != device_class:
            continue
        typer.echo(f"{cls}:")
        for r in rows:
            flags = ("predicted " if r["predicted"] else "") + (
                "pooled" if r["quality_pooled"] else ""
            )
            label = r["model_id"] + (" +refine" if r["refine"] else "")
            typer.echo(
                f"  {label:<32} Psi {r['psi']:.4f}  B {r['B']:.3f} "
                f"[{r['B_ci'][0]:.3f}, {r['B_ci'][1]:.3f}]  I {r['I']:+.3f}  "
                f"C {r['C']:.3f}  n={r['n_questions']} {flags}"
            )


@contextmanager
def _publisher(
    settings: ControllerSettings, engine: Engine, name: str
) -> Iterator[CommandPublisher]:
    """A command publisher on the configured external broker, for as long as the block runs."""
    from controller.ingest.commands import CommandPublisher
    from controller.ingest.mqtt import MqttConnection, MqttOptions

    if settings.broker_url is None:
        typer.echo(
            f"plan {name} needs broker_url (an external broker the controller also uses)",
            err=True,
        )
        raise typer.Exit(2)
    secret = settings.mqtt_password
    options = MqttOptions.from_url(
        settings.broker_url,
        username=settings.mqtt_username,
        password=secret.get_secret_value() if secret else None,
        client_id=f"{settings.mqtt_client_id}-{name}",
        protocol="5",
    )
    connection = MqttConnection(options, subscriptions=[], sink=None)
    connection.start()
    try:
        if not connection.wait_connected(15):
            typer.echo("broker not reachable", err=True)
            raise typer.Exit(1)
        yield CommandPublisher(engine, connection, topics=settings.topics)
    finally:
        connection.stop()


def apply(
    plan_id: Annotated[int, typer.Argument(help="the draft to apply")],
    config: ConfigOption = None,
    wait: Annotated[bool, typer.Option(help="follow the rollout until it ends")] = True,
    timeout_s: Annotated[float, typer.Option(help="per-wave timeout")] = 600.0,
    require_metrics: Annotated[bool, typer.Option(help="wait for healthy metrics")] = True,
) -> None:
    """Apply a draft in waves (canary per class first) through the configured broker."""
    from controller.plans.apply import PlanError, RolloutConfig
    from controller.plans.wiring import build_planning

    settings, engine = open_cli_engine(config)
    try:
        with _publisher(settings, engine, f"plan-{plan_id}") as commands:
            rollout = RolloutConfig(timeout_s=timeout_s, require_metrics=require_metrics)
            applier = build_planning(engine, commands, settings, rollout=rollout).applier
            try:
                typer.echo(applier.apply(plan_id, created_by="cli"))
            except PlanError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from None
            state = "running"
            while wait and state == "running":
                time.sleep(1.0)
                state = applier.tick(plan_id)
            typer.echo(f"plan {plan_id}: {state}")
            if state in ("rolled_back", "failed"):
                raise typer.Exit(1)
    finally:
        engine.dispose()


def profile(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, help="most bench commands to send")] = 5,
    device_class: Annotated[str | None, typer.Option("--class", help="this class only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Bench the pairs whose measurement could change the plan, judged by the fleet's judge."""
    from controller.plans.profiler import ProfilingError
    from controller.plans.wiring import build_planning

    settings, engine = open_cli_engine(config)
    try:
        with _publisher(settings, engine, "profile") as commands:
            profiler = build_planning(engine, commands, settings).profiler
            try:
                sent = profiler.run(limit=limit, device_class=device_class, created_by="cli")
            except ProfilingError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in sent], indent=2))
        return
    if not sent:
        typer.echo("nothing to profile: no unmeasured pair could beat its class's best")
    for s in sent:
        typer.echo(f"{s.device_id:<24} {s.model_id:<32} {s.status:<10} {s.command_id}")
        typer.echo(f"    {s.reason}")
