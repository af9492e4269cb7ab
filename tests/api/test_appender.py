"""Group commit: one transaction for many appends; a failing append rolls back alone."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.appender import Appender, AppenderClosedError, _Work
from api.database import build_engine, migrate, read_scope
from api.sequencer import append_event
from api.tables import LogEvent
from custody.events import Subject, ingested

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class RefusedError(Exception):
    pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = build_engine(f"sqlite:///{tmp_path / 'appender.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def append(*, fail: bool = False) -> Callable[[Session], int]:
    event = ingested(
        event_id=f"e_{os.urandom(8).hex()}",
        time=NOW,
        actor="u_test",
        case="c_test",
        subject=Subject(sha256=os.urandom(32).hex(), size=1, media_type="image/jpeg"),
    )

    def run(session: Session) -> int:
        index = append_event(session, event, now=NOW)
        if fail:
            raise RefusedError(f"refused after taking index {index}")
        return index

    return run


def stored_indices(engine: Engine) -> list[int]:
    with read_scope(engine) as session:
        return list(session.exec(select(LogEvent.index).order_by(col(LogEvent.index))).all())


def commit(engine: Engine, runs: list[Callable[[Session], int]]) -> list[Future[int]]:
    """One group commit of exactly these appends (as the appender's thread makes it)."""
    batch = [_Work(run, Future()) for run in runs]
    Appender(engine)._commit(batch)
    return [work.future for work in batch]


def test_a_batch_commits_once_with_consecutive_indices(engine: Engine) -> None:
    futures = commit(engine, [append() for _ in range(5)])
    assert [f.result() for f in futures] == [0, 1, 2, 3, 4]
    assert stored_indices(engine) == [0, 1, 2, 3, 4]


def test_a_failing_append_rolls_back_alone_and_leaves_no_gap(engine: Engine) -> None:
    futures = commit(engine, [append(), append(fail=True), append(), append(fail=True)])
    assert futures[0].result() == 0
    assert futures[2].result() == 1
    for failed in (futures[1], futures[3]):
        assert isinstance(failed.exception(), RefusedError)
    assert stored_indices(engine) == [0, 1]
    assert [f.result() for f in commit(engine, [append()])] == [2]


def test_a_failing_append_alone_gets_its_own_error(engine: Engine) -> None:
    [future] = commit(engine, [append(fail=True)])
    assert isinstance(future.exception(), RefusedError)
    assert stored_indices(engine) == []


def test_submit_returns_the_index_once_committed(engine: Engine) -> None:
    appender = Appender(engine)
    try:
        assert [appender.submit(append()) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(RefusedError):
            appender.submit(append(fail=True))
        assert appender.submit(append()) == 3
    finally:
        appender.stop()
    assert stored_indices(engine) == [0, 1, 2, 3]


def test_an_append_after_stop_is_refused_not_left_waiting(engine: Engine) -> None:
    appender = Appender(engine)
    assert appender.submit(append()) == 0
    appender.stop()
    with pytest.raises(AppenderClosedError):
        appender.submit(append())
    assert stored_indices(engine) == [0]


def test_appends_racing_stop_are_each_committed_or_refused(engine: Engine) -> None:
    """Whatever the interleaving, no submitter waits for a batch that will never run."""
    appender = Appender(engine)
    appender.submit(append())
    go = threading.Barrier(9)

    def submit() -> int | None:
        go.wait()
        try:
            return appender.submit(append())
        except AppenderClosedError:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(submit) for _ in range(8)]
        go.wait()
        appender.stop()
        outcomes = [future.result(timeout=10) for future in futures]
    committed = sorted(index for index in outcomes if index is not None)
    assert stored_indices(engine) == [0, *committed]
