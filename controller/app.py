"""The controller's HTTP app: ``create_app(settings)`` wires everything; nothing at import.

``edgefleet controller run`` starts a ``ControllerRuntime`` and passes its
command publisher, planning parts and ingest counters in; without them (tests,
an API-only process) routes that send commands answer 503.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from controller import crud
from controller.api import errors
from controller.api.body_limit import BodyLimit
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
    escalation,
    gateway,
    health,
    me,
    models,
    planner_deps,
    serving,
    suites,
    tokens,
)
from controller.api.state import AppState, CommandSender, StatsSource
from controller.core.config import ControllerSettings
from controller.core.db import create_db_engine, migrate, session_scope, startup_lock
from controller.core.security import TokenAuthenticator, ensure_bootstrap_admin
from controller.enrollment import Enrollment
from controller.gateway.mqtt_upstream import LinkClient
from controller.gateway.service import Gateway
from controller.ingest.service import IngestService
from controller.models import Device, IngestedMessage, Model
from controller.plans.wiring import Planning, build_planning
from controller.registry.devices import DeviceCredentialCheck
from controller.registry.profiles import DEFAULT_CLASSES_DIR
from controller.registry.store import ModelStore
from controller.web.dashboard import mount_dashboard

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
TokenSink = Callable[[str], None]


BOOTSTRAP_TOKEN_FILE = "bootstrap-admin-token"


def bootstrap_token_saver(data_dir: Path) -> TokenSink:
    """A sink that writes a generated admin token to a 0600 file and prints only its path.

    The token itself never reaches stderr (which journald keeps) or a log.
    """

    def save(token: str) -> None:
        path = data_dir / BOOTSTRAP_TOKEN_FILE
        data_dir.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        sys.stderr.write(
            "\n  edgefleet: first start, created an admin API token; it is in\n"
            f"\n      {path}\n\n  (readable only by this user). Keep it safe, then delete the "
            f"file;\n  create more tokens with POST {API_PREFIX}/tokens.\n\n"
        )
        sys.stderr.flush()

    return save


def create_app(
    settings: ControllerSettings,
    *,
    command_sender: CommandSender | None = None,
    planning: Planning | None = None,
    engine: Engine | None = None,
    ingest_stats: StatsSource | None = None,
    ingest: IngestService | None = None,
    enrollment: Enrollment | None = None,
    token_sink: TokenSink | None = None,
    migrate_db: bool = True,
) -> FastAPI:
    """Build the FastAPI app over ``settings``; start-up work runs in its lifespan.

    ``planning`` defaults to one built over ``command_sender``, if there is one;
    ``token_sink`` receives a generated bootstrap admin token (default: a 0600 file
    in the data dir, see :func:`bootstrap_token_saver`); ``ingest`` is the running
    ingest whose health ``/healthz`` reports.
    """
    sink = token_sink or bootstrap_token_saver(settings.data_dir)
    owns_engine = engine is None
    engine = engine or create_db_engine(settings.db_url, echo=settings.database_echo)
    if planning is None and command_sender is not None:
        planning = build_planning(engine, command_sender, settings)
    state = AppState(
        settings=settings,
        engine=engine,
        store=ModelStore(settings.models_dir),
        tokens=TokenAuthenticator(engine),
        enrollment=enrollment or Enrollment(engine, settings),
        devices=DeviceCredentialCheck(engine),
        command_sender=command_sender,
        planning=planning,
        ingest_stats=ingest_stats,
        ingest=ingest,
    )
    state.metrics = build_registry(lambda: fleet_snapshot(state))
    link = _gateway_link(settings, ingest, state.metrics)
    gateway_service = state.gateway = Gateway(engine, settings.gateway, state.metrics, link)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _start(state, sink, migrate_db=migrate_db)
        if link is not None:
            link.start()
        yield
        await gateway_service.aclose()
        if link is not None:
            link.stop()
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
    app.add_middleware(
        BodyLimit,
        default_bytes=settings.http_max_body_bytes,
        limits={f"{API_PREFIX}/models/upload": settings.http_max_upload_bytes},
    )
    _mount(app)
    return app


def _gateway_link(
    settings: ControllerSettings, ingest: IngestService | None, registry: CollectorRegistry
) -> LinkClient | None:
    """The gateway's own MQTT client, beside ingest's on the same broker login.

    None without ingest: then devices are reached over HTTP only.
    """
    if ingest is None or settings.gateway.transport == "http":
        return None
    options = replace(
        ingest.connection.options,
        client_id=f"{ingest.connection.options.client_id}-gateway",
        session_expiry_s=0,  # replies to a gateway that restarted have nobody to go to
    )
    return LinkClient(options, settings.topics, settings.gateway, registry)


def _mount(app: FastAPI) -> None:
    app.include_router(health.public_router)
    app.include_router(health.metrics_router)
    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(authorize)], responses=errors.ERROR_RESPONSES
    )
    routes = (
        me,
        devices,
        serving,
        enrollment,
        classes,
        models,
        suites,
        bench,
        commands,
        dead_letters,
        escalation,
    )
    for module in routes:
        api.include_router(module.router)
    for router in planner_deps.routers():
        api.include_router(router)
    api.include_router(tokens.router, dependencies=[Depends(require_admin)])
    app.include_router(api)
    app.include_router(downloads.router, prefix=API_PREFIX)
    app.include_router(suites.file_router, prefix=API_PREFIX)
    app.include_router(enrollment.redeem_router, prefix=API_PREFIX)
    app.include_router(gateway.router)
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
        stats = state.ingest_stats
        stored = (
            stats.stored
            if stats is not None
            else _count(session, select(func.count()).select_from(IngestedMessage))
        )
        devices_online = _count(session, online)
        ingest = state.ingest_health(devices_online)
        return FleetSnapshot(
            devices_total=devices_total,
            devices_online=devices_online,
            messages_stored_total=stored,
            confirmations_total=0 if stats is None else stats.confirmations,
            dead_letters_by_reason=crud.dead_letter_counts(session),
            db_latency_s=latency,
            models_total=models_total,
            ingest_healthy=None if ingest is None else ingest.ok,
            ingest_takeovers=0 if ingest is None else ingest.takeovers,
            ingest_connection_losses=0 if ingest is None else ingest.connection_losses,
        )


def _count(session: Session, stmt: Any) -> int:
    return int(session.exec(stmt).one())
