"""The planner lease on SQLite and a real PostgreSQL: one holder, takeover on expiry, fencing."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from controller.core.db import session_scope
from controller.core.lease import Lease, LeaseLost
from controller.models import Lease as LeaseRow

TTL = 2.0


def _expire(engine: Engine, name: str = "planner") -> None:
    """What a dead holder looks like once its ttl passed, without waiting for it."""
    with session_scope(engine) as session:
        session.execute(update(LeaseRow).values(expires_epoch_s=0.0))


def test_only_one_replica_holds_the_lease(engine: Engine) -> None:
    first, second = (Lease(engine, "planner", name, ttl_s=TTL) for name in ("a", "b"))
    assert first.renew() and first.held and first.token == 1
    assert not second.renew() and not second.held
    assert first.renew() and first.token == 1  # renewing keeps the token
    assert not second.renew()


def test_an_expired_lease_is_taken_over_with_a_higher_token(engine: Engine) -> None:
    first, second = (Lease(engine, "planner", name, ttl_s=TTL) for name in ("a", "b"))
    assert first.renew()
    _expire(engine)
    assert second.renew() and second.token == 2
    assert not first.renew() and not first.held  # the old holder learns it lost it


def test_a_lease_is_taken_over_after_its_ttl_when_the_holder_stops_renewing(
    engine: Engine,
) -> None:
    first, second = (Lease(engine, "planner", name, ttl_s=1.0) for name in ("a", "b"))
    assert first.renew()
    started = time.monotonic()
    while not second.renew():
        assert time.monotonic() - started < 5, "no takeover within 5 s of a 1 s lease"
        time.sleep(0.1)
    assert time.monotonic() - started >= 0.9  # not before the holder's lease ran out
    assert not first.held


def test_a_released_lease_is_taken_over_at_once(engine: Engine) -> None:
    first, second = (Lease(engine, "planner", name, ttl_s=60) for name in ("a", "b"))
    first.start()
    assert first.held
    first.stop()
    assert second.renew() and second.token == 2


def test_the_fence_refuses_a_write_after_a_takeover(engine: Engine) -> None:
    first, second = (Lease(engine, "planner", name, ttl_s=TTL) for name in ("a", "b"))
    assert first.renew()
    with session_scope(engine) as session:
        first.fence(session)  # holder: passes
    _expire(engine)
    assert second.renew()
    with pytest.raises(LeaseLost), session_scope(engine) as session:
        first.fence(session)
    with Session(engine) as session:
        second.fence(session)


def test_two_replicas_racing_for_a_fresh_lease_get_one_holder(engine: Engine) -> None:
    leases = [Lease(engine, "planner", f"r{i}", ttl_s=30) for i in range(4)]
    barrier = threading.Barrier(len(leases))
    results: dict[str, bool] = {}

    def claim(lease: Lease) -> None:
        barrier.wait()
        results[lease.holder] = lease.renew()

    threads = [threading.Thread(target=claim, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results.values()) == 1, results


def test_a_fenced_transaction_holds_off_other_writers_of_the_lease(pg_engine: Engine) -> None:
    """PostgreSQL: the fence locks the row; no takeover slips in before the write commits."""
    first = Lease(pg_engine, "planner", "a", ttl_s=TTL)
    assert first.renew()
    writer = threading.Thread(target=_expire, args=(pg_engine,))
    with session_scope(pg_engine) as session:
        first.fence(session)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive()  # waits on the fenced row
    writer.join(5)
    assert not writer.is_alive()
