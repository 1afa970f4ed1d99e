"""Controller fixtures: migrated databases (SQLite file, real PostgreSQL) and ingest services."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controller.core.db import create_db_engine, migrate
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from shared.topics import Topics
from tests.controller.postgres import PG_BIN, TempPostgres
from tests.support.broker import MosquittoBroker

_db_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """A PostgreSQL 15 cluster for the whole session (``make test`` installs the package)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL is not installed: run `make test`, which installs it")
    server = TempPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file database."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'controller.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_server: TempPostgres) -> Iterator[Engine]:
    """A migrated, fresh PostgreSQL database."""
    engine = create_db_engine(postgres_server.create_database(f"t{next(_db_names)}"))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The storage tests run on both backends."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def ingest_factory() -> Iterator[Callable[..., IngestService]]:
    """Start ingest services against a broker; all are stopped after the test."""
    started: list[IngestService] = []

    def start(
        engine: Engine,
        broker: MosquittoBroker,
        *,
        client_id: str = "test-controller",
        protocol: str = "5",
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
        **config: object,
    ) -> IngestService:
        """``port``: another of the broker's listeners (the controller's, in generated files)."""
        options = MqttOptions(
            host="127.0.0.1",
            port=port or broker.port,
            client_id=client_id,
            protocol=protocol,
            username=username,
            password=password,
        )
        service = IngestService(
            engine,
            options,
            topics=Topics(),
            config=IngestConfig(flush_interval_s=0.05, **config),  # type: ignore[arg-type]
        ).start()
        started.append(service)
        assert service.connection.wait_connected(10), "ingest did not connect"
        return service

    yield start
    for service in started:
        service.stop()
