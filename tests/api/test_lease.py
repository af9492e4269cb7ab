"""The integrator's lease: taken when free or expired, renewed by its holder, read first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from api.database import session_scope
from api.lease import Acquired, Lease
from tests.api.test_integrator import LEASE, FakeClock, database_writes, lease_expiry, sqlite_engine


def leases(engine: Engine, clock: FakeClock) -> tuple[Lease, Lease]:
    return (
        Lease(engine=engine, holder="i_one", term=LEASE, clock=clock),
        Lease(engine=engine, holder="i_two", term=LEASE, clock=clock),
    )


def test_one_holder_at_a_time_until_it_expires(tmp_path: Path) -> None:
    engine, clock = sqlite_engine(tmp_path / "c.db"), FakeClock()
    one, two = leases(engine, clock)
    assert one.acquire() is Acquired.TAKEN
    assert two.acquire() is None
    assert one.acquire() is Acquired.RENEWED
    clock.advance(LEASE + 1)
    assert two.acquire() is Acquired.TAKEN
    assert one.renew() is False  # taken over: no longer ours, even to renew
    assert one.acquire() is None
    two.release()
    assert one.acquire() is Acquired.TAKEN


def test_asking_for_a_held_lease_writes_nothing(tmp_path: Path) -> None:
    engine, clock = sqlite_engine(tmp_path / "c.db"), FakeClock()
    one, two = leases(engine, clock)
    assert one.acquire() is Acquired.TAKEN
    writes = database_writes(engine)
    for _ in range(5):
        assert two.acquire() is None
    assert writes == []


def test_fresh_for_a_third_of_the_term(tmp_path: Path) -> None:
    engine, clock = sqlite_engine(tmp_path / "c.db"), FakeClock()
    one, _ = leases(engine, clock)
    assert not one.fresh()
    one.acquire()
    clock.advance(LEASE / 3 - 0.5)
    assert one.fresh()
    clock.advance(1)
    assert not one.fresh()
    one.release()
    assert not one.fresh()


def test_a_renewal_rides_in_another_transaction(tmp_path: Path) -> None:
    engine, clock = sqlite_engine(tmp_path / "c.db"), FakeClock()
    one, two = leases(engine, clock)
    one.acquire()
    clock.advance(LEASE / 2)
    session: Session
    with session_scope(engine) as session:
        assert one.extend_in(session, clock.now)
    one.renewed(clock.now)
    assert lease_expiry(engine) == clock.now + timedelta(seconds=LEASE)
    assert one.fresh()
    with session_scope(engine) as session:
        assert not two.extend_in(session, clock.now)  # not its lease
