"""The controller's HTTP app: ``create_app(settings)`` wires everything; nothing at import.

``edgefleet controller run`` calls :func:`create_app` and then sets
``app.state.runtime`` (broker, ingest, command publisher); handlers find the
command sender and ingest counters there unless they were injected here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from controller import crud
from controller.api import errors
from controller.api.deps import authorize, require_admin
from controller.api.prometheus import FleetSnapshot, build_registry
from controller.api.routes import (
    bench,
    classes,
    commands,
    dead_letters,
    devices,
    downloads,
    enrollment,
    health,
    me,
    models,
    planner_deps,
    serving,
    tokens,
)
from controller.api.state import AppState, CommandSender, StatsSource
from controller.core.config import ControllerSettings
from controller.core.db import create_db_engine, migrate, session_scope, startup_lock
from controller.core.security import TokenAuthenticator, ensure_bootstrap_admin
from controller.enrollment import Enrollment
from controller.models import Device, IngestedMessage, Model
from controller.registry.devices import DeviceCredentialCheck
from controller.registry.profiles import DEFAULT_CLASSES_DIR
from controller.registry.store import ModelStore
from controller.web.dashboard import mount_dashboard

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
TokenSink = Callable[[str], None]


def print_bootstrap_token(token: str) -> None:
    """Show a generated admin token on the terminal, once (never through logging)."""
    sys.stderr.write(
        "\n  edgefleet: first start, created an admin API token (shown only now):\n"
        f"\n      {token}\n\n  Keep it safe; create more with POST {API_PREFIX}/tokens.\n\n"
    )
    sys.stderr.flush()


def create_app(
    settings: ControllerSettings,
    *,
    command_sender: CommandSender | None = None,
    engine: Engine | None = None,
    ingest_stats: StatsSource | None = None,
    token_sink: TokenSink = print_bootstrap_token,
    migrate_db: bool = True,
) -> FastAPI:
    """Build the FastAPI app over ``settings``; start-up work runs in its lifespan."""
    owns_engine = engine is None
    engine = engine or create_db_engine(settings.db_url, echo=settings.database_echo)
    state = AppState(
        settings=settings,
        engine=engine,
        store=ModelStore(settings.models_dir),
        tokens=TokenAuthenticator(engine),
        enrollment=Enrollment(engine, settings),
        devices=DeviceCredentialCheck(engine),
        command_sender=command_sender,
        ingest_stats=ingest_stats,
    )
    state.metrics = build_registry(lambda: fleet_snapshot(state))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _start(state, token_sink, migrate_db=migrate_db)
        yield
        if owns_engine:
            state.engine.dispose()

    app = FastAPI(
        title="edgefleet controller",
        version="1",
        summary="Operate a fleet of small LLM devices: devices, models, benchmarks, commands.",
        lifespan=lifespan,
    )
    app.state.edgefleet = state
    errors.install(app)
    _mount(app)
    return app


def _mount(app: FastAPI) -> None:
    app.include_router(health.public_router)
    app.include_router(health.metrics_router)
    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(authorize)], responses=errors.ERROR_RESPONSES
    )
    routes = (me, devices, serving, enrollment, classes, models, bench, commands, dead_letters)
    for module in routes:
        api.include_router(module.router)
    for router in planner_deps.routers():
        api.include_router(router)
    api.include_router(tokens.router, dependencies=[Depends(require_admin)])
    app.include_router(api)
    app.include_router(downloads.router, prefix=API_PREFIX)
    app.include_router(enrollment.redeem_router, prefix=API_PREFIX)
    mount_dashboard(app)


def _start(state: AppState, token_sink: TokenSink, *, migrate_db: bool) -> None:
    """Migrate, load device classes, make sure an admin can log in (one replica at a time)."""
    with startup_lock(state.engine):
        _seed(state, token_sink, migrate_db=migrate_db)


def _seed(state: AppState, token_sink: TokenSink, *, migrate_db: bool) -> None:
    if migrate_db:
        migrate(state.engine)
    classes_dir = state.settings.device_classes_dir or DEFAULT_CLASSES_DIR
    if classes_dir.is_dir():
        with session_scope(state.engine) as session:
            loaded = crud.load_device_classes(session, directory=classes_dir)
        logger.info("API: %d device classes from %s", len(loaded), classes_dir)
    with Session(state.engine) as session:
        generated = ensure_bootstrap_admin(session, state.settings.bootstrap_admin_token)
    if generated is not None:
        token_sink(generated)


def fleet_snapshot(state: AppState) -> FleetSnapshot:
    """The numbers one Prometheus scrape reports."""
    with Session(state.engine) as session:
        started = time.perf_counter()
        session.execute(text("SELECT 1"))
        latency = time.perf_counter() - started
        devices_total = _count(session, select(func.count()).select_from(Device))
        online = select(func.count()).select_from(Device).where(col(Device.status) == "online")
        models_total = _count(session, select(func.count()).select_from(Model))
        stats = state.stats()
        stored = (
            stats.stored
            if stats is not None
            else _count(session, select(func.count()).select_from(IngestedMessage))
        )
        return FleetSnapshot(
            devices_total=devices_total,
            devices_online=_count(session, online),
            messages_stored_total=stored,
            dead_letters_by_reason=crud.dead_letter_counts(session),
            db_latency_s=latency,
            models_total=models_total,
        )


def _count(session: Session, stmt: Any) -> int:
    return int(session.exec(stmt).one())
