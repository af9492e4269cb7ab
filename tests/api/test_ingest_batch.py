"""Ingests that meet in one group commit are recorded with one statement per kind of row.

The appender is held on a first item while the ingests queue behind it, so they reach it as
one batch: the same rows and events as one at a time, on SQLite and on PostgreSQL; a batch
with an ingest into a missing case falls back to one at a time, and only that one fails.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import api.evidence
from api.appender import Appender
from api.database import read_scope
from api.evidence import EvidenceService, IngestRequest, IngestResult
from api.problems import Problem
from api.staging import StagedFile
from api.tables import Case, Evidence, Ingest, LogEvent, User
from custody.events import decode_entry
from storage.local import LocalObjectStore
from tests.api.test_integrator import NOW, any_engine  # noqa: F401  (a fixture)

CASES = ("c_one", "c_two")


@pytest.fixture
def service(any_engine: Engine, tmp_path: Path) -> Iterator[EvidenceService]:  # noqa: F811
    with Session(any_engine) as session:
        session.add(User(id="u_lawyer", name="A. Lawyer", role="lawyer", created_at=NOW))
        session.flush()
        for case in CASES:
            session.add(Case(id=case, title=case, created_by="u_lawyer", created_at=NOW))
        session.commit()
    appender = Appender(any_engine)
    yield EvidenceService(
        engine=any_engine,
        store=LocalObjectStore(tmp_path / "store"),
        retention=timedelta(days=1),
        appender=appender,
    )
    appender.stop()


def staged(data: bytes) -> StagedFile:
    digest = hashlib.sha256(data).hexdigest()
    return StagedFile(None, len(data), {"sha256": digest}, data[:64], data)


def ingest_as_one_batch(
    service: EvidenceService, uploads: list[tuple[bytes, str]]
) -> list[IngestResult | Exception]:
    """Each upload ingested from its own thread, all reaching the appender in one batch."""
    appender: Appender = service._appender
    gate, holding = threading.Event(), threading.Event()

    def hold(_session: Session) -> None:
        holding.set()
        gate.wait(30)

    blocker = threading.Thread(target=appender.submit, args=(hold,))
    blocker.start()
    assert holding.wait(10)
    results: list[IngestResult | Exception] = [Exception("not run")] * len(uploads)

    def run(i: int, data: bytes, case: str) -> None:
        try:
            request = IngestRequest(case, "u_lawyer", f"f{i}.bin", None, "p_lawyer")
            results[i] = service.ingest(staged(data), request, now=NOW + timedelta(seconds=i))
        except Exception as exc:
            results[i] = exc

    threads = [
        threading.Thread(target=run, args=(i, data, case)) for i, (data, case) in enumerate(uploads)
    ]
    for thread in threads:
        thread.start()
    while appender._queue.qsize() < len(uploads):  # every ingest sealed and queued
        threading.Event().wait(0.01)
    gate.set()
    for thread in [*threads, blocker]:
        thread.join(30)
    return results


def counting_bulk(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every bulk call the ingests make."""
    calls: list[int] = []
    real: Callable[[Session, list[Any]], list[int]] = api.evidence._record_ingests

    def counted(session: Session, items: list[Any]) -> list[int]:
        calls.append(len(items))
        return real(session, items)

    monkeypatch.setattr(api.evidence, "_record_ingests", counted)
    return calls


def stored(engine: Engine) -> tuple[list[LogEvent], list[Ingest], list[Evidence]]:
    with read_scope(engine) as session:
        events = list(session.exec(select(LogEvent).order_by(col(LogEvent.index))).all())
        ingests = list(session.exec(select(Ingest).order_by(col(Ingest.event_index))).all())
        evidence = list(session.exec(select(Evidence)).all())
    return events, ingests, evidence


def test_a_batch_of_ingests_is_recorded_in_one_go_as_one_at_a_time_would(
    service: EvidenceService,
    any_engine: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counting_bulk(monkeypatch)
    uploads = [(f"file {i}".encode(), CASES[i % 2]) for i in range(10)]
    uploads.append((b"file 3", CASES[0]))  # the same bytes again, in the same batch
    results = ingest_as_one_batch(service, uploads)
    assert calls == [len(uploads)]
    assert all(isinstance(r, IngestResult) for r in results), results
    done = [r for r in results if isinstance(r, IngestResult)]
    assert sorted(r.index for r in done) == list(range(len(uploads)))

    events, ingests, evidence = stored(any_engine)
    assert [e.index for e in events] == list(range(len(uploads)))
    assert len(evidence) == 10  # one original per content, however often it came
    by_index = {r.index: r for r in done}
    for event, ingest in zip(events, ingests, strict=True):
        result = by_index[event.index]
        entry = decode_entry(event.entry)
        assert (event.event_id, ingest.id) == (result.event_id, result.event_id)
        assert ingest.event_index == event.index
        assert entry["subject"]["sha256"] == result.sha256 == ingest.sha256
        assert entry["case"] == event.case_id == ingest.case_id == result.case_id
        assert event.created_at == result.received_at == ingest.received_at


def test_an_ingest_into_a_missing_case_fails_alone_and_leaves_no_gap(
    service: EvidenceService,
    any_engine: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counting_bulk(monkeypatch)
    uploads = [(f"file {i}".encode(), CASES[0]) for i in range(6)]
    uploads[2] = (b"lost", "c_gone")
    results = ingest_as_one_batch(service, uploads)
    assert calls == [6, 1, 1, 1, 1, 1, 1]  # the batch, then each alone
    failed = results[2]
    assert isinstance(failed, Problem)
    assert failed.status == 404
    done = [r for r in results if isinstance(r, IngestResult)]
    assert sorted(r.index for r in done) == [0, 1, 2, 3, 4]
    events, ingests, _ = stored(any_engine)
    assert [e.index for e in events] == [i.event_index for i in ingests] == [0, 1, 2, 3, 4]
