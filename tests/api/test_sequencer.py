"""Appending events: gap-free indices under concurrency, rollback leaves no gap."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from api.database import build_engine, migrate, session_scope
from api.sequencer import append_event
from api.tables import LogEvent
from custody.events import CustodyEvent, Subject, decode_entry, ingested
from tests.e2e.servers import throwaway_database

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def event(i: int) -> CustodyEvent:
    return ingested(
        event_id=f"e_{i}",
        time=NOW,
        actor="u_test",
        case="c_test",
        subject=Subject(sha256=os.urandom(32).hex(), size=i, media_type="image/jpeg"),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = build_engine(f"sqlite:///{tmp_path / 'seq.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    with throwaway_database() as url:
        eng = build_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()


def indices(engine: Engine) -> list[int]:
    with session_scope(engine) as session:
        return list(session.exec(select(LogEvent.index).order_by(col(LogEvent.index))).all())


def test_concurrent_appends_are_gap_free(engine: Engine) -> None:
    def append(i: int) -> int:
        with session_scope(engine) as session:
            return append_event(session, event(i), now=NOW)

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(append, range(120)))
    assert sorted(got) == list(range(120))
    assert indices(engine) == list(range(120))


def test_rolled_back_append_leaves_no_gap(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert append_event(session, event(0), now=NOW) == 0

    def crash_before_commit() -> None:
        with session_scope(engine) as session:
            assert append_event(session, event(1), now=NOW) == 1
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash_before_commit()
    with session_scope(engine) as session:
        assert append_event(session, event(2), now=NOW) == 1
    assert indices(engine) == [0, 1]


def test_entry_is_stored_canonical(engine: Engine) -> None:
    e = event(7)
    with session_scope(engine) as session:
        append_event(session, e, now=NOW)
    with session_scope(engine) as session:
        row = session.exec(select(LogEvent)).one()
    assert decode_entry(row.entry) == e.to_json()
    assert row.subject_sha256 == e.subject.sha256 if e.subject else False
    assert row.created_at == NOW
