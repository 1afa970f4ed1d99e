"""``edgefleet doctor controller``: what is wrong on the operators' server, and the fix.

Checks the controller's API, its database, the broker with the controller's own login
(TLS too), the data directory's free disk and the clock.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from sqlalchemy import text
from sqlalchemy.engine import make_url

from controller.core.config import ControllerSettings, load_settings
from controller.core.db import create_db_engine
from controller.ingest.mqtt import MqttOptions, try_login
from shared.doctor import CheckResult, DoctorReport, broker_result, fail, ok, warn
from shared.doctor_cli import JsonOption, show

TIMEOUT_S = 10.0
MIN_FREE_MB = 2_000
"""The registry keeps model files in the data directory; a 4-bit 7B model is ~4 GB."""


def doctor_controller(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="controller YAML file")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the controller host: API, database, broker login, disk, clock."""
    try:
        settings = load_settings(config)
    except (OSError, ValueError) as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    checks = [
        check_api(settings),
        check_database(settings),
        check_broker(settings),
        check_disk(settings.data_dir),
        check_clock(),
    ]
    show(DoctorReport(host=f"controller on {socket.gethostname()}", checks=checks), as_json)


def check_api(settings: ControllerSettings) -> CheckResult:
    """GET /healthz where the controller listens."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    url = f"http://{host}:{settings.api_port}/healthz"
    try:
        response = httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        fix = "start it (systemctl start edgefleet-controller, or edgefleet controller run)"
        return fail("api", f"the controller does not answer at {url}: {exc}", fix)
    if response.status_code != 200:
        return fail("api", f"{url} answered {response.status_code}", "see the controller's log")
    return ok("api", f"{url} answered 200")


def check_database(settings: ControllerSettings) -> CheckResult:
    """Connect and ``SELECT 1`` (the URL is shown without its password)."""
    url = make_url(settings.db_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        fix = "start the controller once (it creates the database), or correct data_dir"
        return warn("database", f"no database at {url.database} yet", fix)  # not created here
    engine = create_db_engine(settings.db_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error is the finding
        fix = "check database_url and that the database server runs and accepts this login"
        return fail("database", f"cannot use {shown}: {type(exc).__name__}", fix)
    finally:
        engine.dispose()
    return ok("database", f"{shown} answers")


def check_broker(settings: ControllerSettings) -> CheckResult:
    """Log in to the external broker as the controller does; the embedded one runs inside it."""
    if settings.broker_url is None:
        return ok("broker", "embedded broker: it runs inside the controller (see the api check)")
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    options = MqttOptions.from_url(
        settings.broker_url,
        username=settings.mqtt_username,
        password=password,
        client_id=settings.mqtt_client_id,
    )
    return broker_result(
        settings.broker_url,
        options.username,
        try_login(options, timeout_s=TIMEOUT_S),
        "set mqtt_username/mqtt_password to the controller's broker login (ansible: the vault)",
    )


def check_disk(data_dir: Path) -> CheckResult:
    """Free disk where the registry keeps model files."""
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free / 1e6
    if free_mb < MIN_FREE_MB:
        fix = "free disk space, or move data_dir to a larger disk"
        return warn("disk", f"{free_mb:.0f} MB free at {data_dir}", fix, free_mb=free_mb)
    return ok("disk", f"{free_mb:.0f} MB free at {data_dir}", free_mb=free_mb)


def check_clock() -> CheckResult:
    """Whether the clock is kept by NTP (devices' timestamps and TLS depend on it)."""
    fix = "enable NTP: timedatectl set-ntp true"
    try:
        synced = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        synced = ""
    year = time.gmtime().tm_year
    if year < 2025:
        return fail("clock", f"the clock says {year}", fix)
    if synced == "yes":
        return ok("clock", "synchronized by NTP")
    return warn("clock", "not known to be synchronized by NTP", fix)
