"""``edgefleet doctor agent``: what is wrong on this device, and what to do about it.

Checks the CPU, the engine (a smoke generation in a child process, with the CPU variant
llama.cpp loaded), memory and disk against the class's budgets, the broker login, the
controller and the clock. Nothing here imports llama.cpp: a broken engine kills only
the check's child.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from shared.doctor import CheckResult, DoctorReport
from shared.doctor_cli import JsonOption, show


def doctor_agent(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="agent YAML file")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a device: CPU, engine, memory, disk, broker, controller, clock."""
    from agent.config import ConfigError, load_profile, load_settings
    from agent.doctor.host import (
        check_clock,
        check_cpu,
        check_disk,
        check_engine_runs,
        check_memory,
    )
    from agent.doctor.network import check_broker, check_controller
    from agent.models.assignment import model_to_serve

    try:
        settings = load_settings(config)
        profile = load_profile(settings)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    used_mb = sum(f.stat().st_size for f in settings.models_dir.rglob("*") if f.is_file()) / 1e6
    controller, server_date, measured_at = check_controller(settings)
    checks: list[CheckResult] = [
        check_cpu(),
        check_engine_runs(profile.threads),
        check_memory(profile, model_to_serve(settings.data_dir, settings.initial_model)),
        check_disk(profile, settings.models_dir, used_mb),
        check_broker(settings),
        controller,
        check_clock(server_date, measured_at),
    ]
    show(
        DoctorReport(host=f"{settings.device_id} on {socket.gethostname()}", checks=checks), as_json
    )
