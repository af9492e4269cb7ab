"""Rebuilding the index from the log: into an empty database, what the signature vouches for."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from api.database import build_engine, migrate, session_scope
from api.logstore import LogStore
from api.rebuild import compare_index, rebuild_index
from api.tables import Evidence, LogEvent
from custody.errors import TileError
from custody.tiles import decode_bundle, encode_bundle
from storage.memory import MemoryObjectStore
from tests.custody.test_audit import Log, build_log

BATCHES = (10, 290)


@pytest.fixture
def log() -> Log:
    return build_log(BATCHES)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def log_store(log: Log) -> LogStore:
    store = MemoryObjectStore()
    for path, data in log.source.objects.items():
        store.put(
            f"log/{path}",
            io.BytesIO(data),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            mutable=True,
        )
    return LogStore(store, "log/")


def counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        events = len(session.exec(select(LogEvent)).all())
        return events, len(session.exec(select(Evidence)).all())


def test_rebuild_fills_an_empty_database_and_then_compares_equal(log: Log, engine: Engine) -> None:
    report = rebuild_index(engine, log_store(log), log.signer.verifier())
    assert (report.size, report.events, report.evidence) == (300, 300, len(log.originals))
    assert counts(engine) == (300, len(log.originals))
    compared = compare_index(engine, log_store(log), log.signer.verifier())
    assert (compared.events, compared.differences) == (300, [])


@pytest.mark.parametrize("table", ["log_events", "evidence"])
def test_rebuild_refuses_a_database_with_rows(log: Log, engine: Engine, table: str) -> None:
    with session_scope(engine) as session:
        if table == "evidence":
            session.add(
                Evidence(
                    sha256="ab" * 32,
                    size=1,
                    media_type="text/plain",
                    storage_key="originals/sha256/ab/" + "ab" * 32,
                    first_seen_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
        else:
            session.add(
                LogEvent(
                    index=0,
                    event_id="e1",
                    type="ingested",
                    entry=b"{}",
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
    before = counts(engine)
    with pytest.raises(ValueError, match=f"already holds {table} rows"):
        rebuild_index(engine, log_store(log), log.signer.verifier())
    assert counts(engine) == before


def test_rebuild_rolls_back_entries_that_do_not_hash_to_the_signed_root(
    log: Log, engine: Engine
) -> None:
    path = "tile/entries/001.p/44"
    entries = decode_bundle(log.source.objects[path])
    entries[3] = entries[3].replace(b'"actor":"u1"', b'"actor":"u2"')
    log.source.objects[path] = encode_bundle(entries)
    with pytest.raises(TileError, match="do not hash to the root signed for size 300"):
        rebuild_index(engine, log_store(log), log.signer.verifier())
    assert counts(engine) == (0, 0)
    with pytest.raises(TileError, match="do not hash to the root signed"):
        compare_index(engine, log_store(log), log.signer.verifier())


def test_rebuild_rejects_a_bundle_short_of_entries(log: Log, engine: Engine) -> None:
    path = "tile/entries/001.p/44"
    log.source.objects[path] = encode_bundle(decode_bundle(log.source.objects[path])[:-1])
    with pytest.raises(TileError, match="holds 43 entries, not 44"):
        rebuild_index(engine, log_store(log), log.signer.verifier())
    assert counts(engine) == (0, 0)
