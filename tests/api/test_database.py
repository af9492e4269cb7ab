"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event, text
from sqlmodel import SQLModel, col, select

from api.copies import copy_key
from api.database import (
    MIGRATIONS,
    _WriterLock,
    build_engine,
    migrate,
    read_connection,
    read_once,
    session_scope,
)
from api.settings import Settings
from api.tables import Case, Evidence, LogEvent, SharingCopy, User
from custody.events import Derivation, Subject, derived, encode_entry
from tests.e2e.servers import throwaway_database

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
ORIGINAL, COPY = "a" * 64, "b" * 64


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with throwaway_database() as database_url:
        yield database_url


def test_migrations_match_models(url: str) -> None:
    engine: Engine = build_engine(url)
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == [], "models and migrations differ: add an Alembic revision"


def test_concurrent_starts_migrate_once(url: str) -> None:
    engines = [build_engine(url) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(migrate, engines))
    for engine in engines:
        engine.dispose()


@pytest.mark.postgres
def test_a_postgres_pool_keeps_its_size_and_opens_as_many_again_at_peak() -> None:
    with throwaway_database() as database_url:
        engine = build_engine(database_url, pool_size=3)
        try:
            held = [engine.connect() for _ in range(6)]
            assert engine.pool.checkedout() == 6  # type: ignore[attr-defined]
            for connection in held:
                connection.close()
            assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        finally:
            engine.dispose()


def test_the_pool_size_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_DATABASE_POOL_SIZE", "7")
    assert Settings(data_dir=tmp_path).database_pool_size == 7
    monkeypatch.setenv("CUSTODY_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings(data_dir=tmp_path)


def test_a_one_statement_read_sends_no_begin_on_sqlite_and_sees_committed_rows(
    tmp_path: Path,
) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'r.db'}")
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert "BEGIN IMMEDIATE" in sent  # writes still take the lock up front
        sent.clear()
        with read_once(engine) as connection:
            assert connection.exec_driver_sql("SELECT x FROM t").scalar() == 1
        assert sent == ["SELECT x FROM t"]
        sent.clear()
        with read_connection(engine) as connection:  # several reads: one snapshot
            assert connection.exec_driver_sql("SELECT x FROM t").scalar() == 1
        assert sent == ["BEGIN", "SELECT x FROM t"]
        with engine.begin() as connection:  # the one-statement read left no lock behind
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
        with read_once(engine) as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_one_statement_read_on_postgres_opens_no_transaction_and_leaves_none_behind() -> None:
    with throwaway_database() as database_url:
        engine = build_engine(database_url, pool_size=1)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            with read_once(engine) as connection:
                assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
                raw = connection.connection.dbapi_connection
                # No BEGIN went out, so no transaction is open after the statement.
                assert raw.info.transaction_status == TransactionStatus.IDLE  # type: ignore[union-attr]
            # The same pooled connection is transactional again for the next user: a write
            # rolled back is gone.
            connection = engine.connect()
            try:
                assert connection.connection.dbapi_connection is raw
                connection.exec_driver_sql("INSERT INTO t VALUES (2)")
                connection.rollback()
            finally:
                connection.close()
            with read_once(engine) as connection:
                assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        finally:
            engine.dispose()


@contextmanager
def _file_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the SQLite writers' file lock until the block ends."""
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            f"f = open({str(path)!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        try:
            yield
        finally:
            holder.stdin.close()
            holder.wait(timeout=10)


def test_a_sqlite_writer_waits_for_a_writer_in_another_process_and_goes_on_once_it_is_done(
    tmp_path: Path,
) -> None:
    database = tmp_path / "w.db"
    engine = build_engine(f"sqlite:///{database}")
    migrate(engine)
    wrote = threading.Event()

    def write() -> None:
        with session_scope(engine) as session:
            session.exec(text("CREATE TABLE written (x INTEGER)"))  # type: ignore[call-overload]
        wrote.set()

    writer = threading.Thread(target=write)
    with _file_lock_held_elsewhere(Path(f"{database}.write-lock")):
        writer.start()
        assert not wrote.wait(0.5), "wrote while another process held the writers' lock"
    assert wrote.wait(10)
    writer.join()
    engine.dispose()


def test_a_sqlite_writer_that_cannot_get_the_file_lock_goes_on_to_sqlites_own_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db.write-lock"
    lock = _WriterLock(path, timeout=0.2)
    with _file_lock_held_elsewhere(path):
        with lock:  # does not wait for ever: SQLite's busy timeout decides from here
            pass
        with lock:  # and the thread lock was released
            pass
    # The file lock is free now: taken, and given back on the way out.
    with lock, pytest.raises(BlockingIOError), path.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with path.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
        connection.commit()


def _copy_made(case: str, actor: str, index: int) -> LogEvent:
    event = derived(
        event_id=f"e_{index}",
        time=NOW,
        actor=actor,
        case=case,
        subject=Subject(COPY, 8, "image/png"),
        derivation=Derivation(ORIGINAL, "share/1", "png/1", ("tEXt",), "png-idat", "d" * 64),
    )
    return LogEvent(
        index=index,
        event_id=event.id,
        type="derived",
        subject_sha256=COPY,
        case_id=case,
        entry=encode_entry(event),
        created_at=NOW,
        actor=actor,
    )


def _copy_rows(engine: Engine) -> list[tuple[str, str, int, str]]:
    with session_scope(engine) as session:
        rows = session.exec(select(SharingCopy).order_by(col(SharingCopy.event_index))).all()
        return [(r.sha256, r.case_id, r.event_index, r.created_by) for r in rows]


def test_copies_become_a_row_per_derived_entry_and_the_rows_dropped_before_come_back(
    url: str,
) -> None:
    engine = build_engine(url)
    _migrate_to(engine, "0006")  # one row per copy's bytes: the second case's was dropped
    with session_scope(engine) as session:
        for user in ("u_a", "u_b"):
            session.add(
                User(id=user, name=user, role="lawyer", created_at=NOW, pseudonym=f"p{user}")
            )
        session.flush()
        session.add(
            Evidence(
                sha256=ORIGINAL, size=9, media_type="image/png", storage_key="o", first_seen_at=NOW
            )
        )
        for case in ("c_a", "c_b"):
            session.add(Case(id=case, title=case, created_by="u_a", created_at=NOW))
        session.flush()
        session.add_all([_copy_made("c_a", "pu_a", 5), _copy_made("c_b", "pu_b", 9)])
        session.add(
            SharingCopy(
                sha256=COPY,
                original_sha256=ORIGINAL,
                case_id="c_a",
                size=8,
                media_type="image/png",
                profile="share",
                tool="png/1",
                removed_json='["tEXt"]',
                content_kind="png-idat",
                content_sha256="d" * 64,
                storage_key=copy_key(COPY),
                created_by="u_a",
                created_at=NOW,
                event_index=5,
            )
        )
    migrate(engine)
    assert _copy_rows(engine) == [(COPY, "c_a", 5, "u_a"), (COPY, "c_b", 9, "u_b")]
    with session_scope(engine) as session:
        restored = session.get(SharingCopy, 9)
        assert restored is not None
        assert restored.model_dump() == {
            **session.get(SharingCopy, 5).model_dump(),  # type: ignore[union-attr]
            "case_id": "c_b",
            "created_by": "u_b",
            "event_index": 9,
        }
    _migrate_to(engine, "0006", down=True)
    assert _copy_rows(engine) == [(COPY, "c_a", 5, "u_a")]
    migrate(engine)
    assert _copy_rows(engine) == [(COPY, "c_a", 5, "u_a"), (COPY, "c_b", 9, "u_b")]
    engine.dispose()


def _purpose_keys(engine: Engine) -> tuple[dict[str, str | None], dict[str, str | None]]:
    with engine.connect() as connection:
        reads = connection.execute(text("SELECT event_id, purpose_key FROM access_purposes"))
        exports = connection.execute(text("SELECT id, purpose_key FROM exports"))
        return dict(reads.all()), dict(exports.all())  # type: ignore[arg-type]


def test_purpose_keys_are_added_and_every_export_gets_one(url: str) -> None:
    """Reads logged before keep no key (their entries hold a plain SHA-256); an export still
    to be logged (an interrupted build, resumed after the upgrade) needs one."""
    engine = build_engine(url)
    _migrate_to(engine, "0007")
    with session_scope(engine) as session:
        session.add(User(id="u_a", name="A", role="lawyer", created_at=NOW, pseudonym="pu_a"))
        session.flush()
        session.add(Case(id="c_a", title="c", created_by="u_a", created_at=NOW))
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO access_purposes (event_id, purpose) VALUES ('e_1', 'hearing')")
        )
        for export_id in ("x_1", "x_2"):
            connection.execute(
                text(
                    "INSERT INTO exports (id, case_id, created_by, actor, purpose, items_json, "
                    "status, created_at, updated_at) VALUES (:id, 'c_a', 'u_a', 'pu_a', "
                    "'for the court', '[]', 'building', :now, :now)"
                ),
                {"id": export_id, "now": NOW},
            )
    migrate(engine)
    reads, exports = _purpose_keys(engine)
    assert reads == {"e_1": None}
    assert set(exports) == {"x_1", "x_2"}
    keys = list(exports.values())
    assert all(key is not None and len(bytes.fromhex(key)) == 32 for key in keys)
    assert keys[0] != keys[1]
    _migrate_to(engine, "0007", down=True)
    migrate(engine)
    assert _purpose_keys(engine)[0] == {"e_1": None}
    engine.dispose()
