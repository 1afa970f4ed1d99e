"""A named lease in the database: singleton work runs on one controller replica at a time.

Replicas race for a row in the ``lease`` table with conditional UPDATEs, so it
works on PostgreSQL and on SQLite alike. Time is the database's clock (replica
clocks may disagree). The holder renews every ``ttl_s / 3`` from a thread of
its own; when it dies, another replica takes over once the expiry has passed,
and the lease's ``token`` rises. :meth:`Lease.fence` is called inside the
transaction that writes singleton work (a rollout step): it locks the row on
PostgreSQL and fails unless this replica still holds the lease with its token,
so a replica that stalled past its expiry cannot write after its successor
took over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from controller.models import Lease as LeaseRow

logger = logging.getLogger(__name__)

PLANNER_LEASE = "planner"
"""The lease that the planner loop (rollouts, profiling rounds, re-plans) runs under."""

_ABSENT = 0
"""What :meth:`Lease._claim` returns when there is no row yet (tokens start at 1)."""
_SQLITE_NOW = "SELECT (julianday('now') - 2440587.5) * 86400.0"
_POSTGRES_NOW = "SELECT EXTRACT(EPOCH FROM clock_timestamp())"


class LeaseLost(RuntimeError):
    """The lease is not (or no longer) held by this replica: the singleton write is refused."""


def replica_name(client_id: str) -> str:
    """A holder name unique to this process: host, pid, MQTT client id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{client_id}:{uuid.uuid4().hex[:8]}"[:200]


def database_now(connection: Connection | Session) -> float:
    """The database's clock, seconds since the epoch."""
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    query = _SQLITE_NOW if bind.dialect.name == "sqlite" else _POSTGRES_NOW
    return float(connection.execute(text(query)).scalar_one())


class Lease:
    """One replica's claim on the lease ``name``; :meth:`start` keeps it renewed."""

    def __init__(self, engine: Engine, name: str, holder: str, *, ttl_s: float = 10.0) -> None:
        self.engine, self.name, self.holder, self.ttl_s = engine, name, holder, ttl_s
        self.token: int | None = None
        self._valid_until = 0.0  # monotonic; a renewal's start plus the ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether the last renewal is recent enough that no other replica can have taken over."""
        return self.token is not None and time.monotonic() < self._valid_until

    def renew(self) -> bool:
        """Renew the lease, or take it when it is free or expired; True when held afterwards."""
        started = time.monotonic()
        try:
            with self.engine.begin() as connection:
                token = self._claim(connection)
            if token == _ABSENT:
                token = self._create()
        except Exception:  # the database is away: not held, try again next round
            logger.warning("lease %s: renewal failed", self.name, exc_info=True)
            token = None
        if token is None:
            if self.token is not None:
                logger.warning("lease %s: lost (token %d)", self.name, self.token)
            self.token = None
            return False
        if token != self.token:
            logger.info("lease %s: acquired by %s (token %d)", self.name, self.holder, token)
        self.token, self._valid_until = token, started + self.ttl_s
        return True

    def _claim(self, connection: Connection) -> int | None:
        now = database_now(connection)
        expires = now + self.ttl_s
        row = col(LeaseRow.name) == self.name
        if self.token is not None:
            mine = row & (col(LeaseRow.holder) == self.holder) & (col(LeaseRow.token) == self.token)
            renewed = connection.execute(
                update(LeaseRow).where(mine).values(expires_epoch_s=expires)
            )
            if renewed.rowcount == 1:
                return self.token
        taken = connection.execute(
            update(LeaseRow)
            .where(row & (col(LeaseRow.expires_epoch_s) < now))
            .values(holder=self.holder, token=col(LeaseRow.token) + 1, expires_epoch_s=expires)
        )
        if taken.rowcount == 1:
            return int(connection.execute(select(col(LeaseRow.token)).where(row)).scalar_one())
        if connection.execute(select(col(LeaseRow.token)).where(row)).first() is not None:
            return None  # held by another replica
        return _ABSENT

    def _create(self) -> int | None:
        """The first claim ever: insert the row (token 1) unless another replica did first."""
        try:
            with self.engine.begin() as connection:
                expires = database_now(connection) + self.ttl_s
                connection.execute(
                    insert(LeaseRow).values(
                        name=self.name, holder=self.holder, token=1, expires_epoch_s=expires
                    )
                )
        except IntegrityError:
            return None
        return 1

    def fence(self, session: Session) -> None:
        """Inside a writing transaction: raise :class:`LeaseLost` unless this replica holds it.

        On PostgreSQL the row stays locked until the transaction ends, so a
        takeover waits for this write to commit (or the write sees the takeover).
        """
        row = session.execute(
            select(LeaseRow).where(col(LeaseRow.name) == self.name).with_for_update()
        ).scalar_one_or_none()
        now = database_now(session)
        if (
            row is None
            or row.holder != self.holder
            or row.token != self.token
            or row.expires_epoch_s <= now
        ):
            raise LeaseLost(f"lease {self.name} is not held by {self.holder}")

    def start(self) -> Lease:
        """Renew every ``ttl_s / 3`` in a daemon thread (the first try happens now)."""
        self.renew()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            self.renew()

    def stop(self) -> None:
        """Stop renewing and give the lease up, so another replica takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_s)
        if self.token is None:
            return
        mine = (
            (col(LeaseRow.name) == self.name)
            & (col(LeaseRow.holder) == self.holder)
            & (col(LeaseRow.token) == self.token)
        )
        try:
            with self.engine.begin() as connection:
                connection.execute(update(LeaseRow).where(mine).values(expires_epoch_s=0.0))
        except Exception:
            logger.warning("lease %s: could not release", self.name, exc_info=True)
        self.token = None
