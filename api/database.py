"""Database engine, sessions and migrations (Alembic, run on start, one process at a time)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works: it only has to be the same in every process of one deployment.
_MIGRATION_LOCK_ID = 0x637573746F6479  # "custody"
_READ_ONLY = "custody_read_only"
_ONE_STATEMENT = "one-statement"  # a value of _READ_ONLY: see `read_once`
_SQLITE_BUSY_TIMEOUT_S = 60


def build_engine(url: str, *, pool_size: int = 20) -> Engine:
    """An engine for `url`; SQLite gets WAL, full fsync and writer-serialising transactions.

    On PostgreSQL, `pool_size` connections stay open and as many again may open at peak.
    Request threads (AnyIO's limit is 40), the group commit, the integrator and the
    watchers all check connections out: past the pool, each checkout opens and closes a
    connection of its own, which under load costs more than its query.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            # More than the request threads (AnyIO's default limit is 40) plus the appender,
            # integrator and watcher: an overflow connection is opened (PRAGMAs and all) and
            # closed again on every use, which under load costs more than the query.
            pool_size=64,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged ingest survives power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so two appenders queue on busy_timeout instead
    # of one failing with SQLITE_BUSY when it upgrades a read transaction to a write. Reads
    # (read_scope) begin deferred: under WAL they neither wait for nor block writers.
    read_only = conn.get_execution_options().get(_READ_ONLY)
    if read_only == _ONE_STATEMENT:
        return  # the connection is in autocommit mode: its one statement is a transaction
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A session for reads only: on SQLite it takes no write lock."""
    with Session(_read_only(engine), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for Core reads only (half the cost of a session, for the hottest reads);
    its transaction is rolled back at the end."""
    with _read_only(engine).connect() as connection:
        yield connection


@contextmanager
def read_once(engine: Engine) -> Iterator[Connection]:
    """A connection for one Core read statement (a token, a membership): no BEGIN and no
    ROLLBACK are sent (on PostgreSQL the connection is in autocommit mode for it: one round
    trip, not three), as a lone statement is a transaction of its own; a second statement
    would see its own snapshot (use `read_connection` for that)."""
    with _read_only(engine, _ONE_STATEMENT).connect() as connection:
        yield connection


_READ_ENGINES: weakref.WeakKeyDictionary[Engine, dict[object, Engine]] = weakref.WeakKeyDictionary()


def _read_only(engine: Engine, mode: object = True) -> Engine:
    """The engine with a read-only option, made once: making it costs as much as a query."""
    engines = _READ_ENGINES.setdefault(engine, {})
    read_engine = engines.get(mode)
    if read_engine is None:
        options: dict[str, object] = {_READ_ONLY: mode}
        if mode == _ONE_STATEMENT and engine.dialect.name == "postgresql":
            # SQLite's connections are in autocommit mode already (see _sqlite_connect).
            options["isolation_level"] = "AUTOCOMMIT"
        read_engine = engines[mode] = engine.execution_options(**options)
    return read_engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with (
        _writer_lock(engine),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


class _WriterLock:
    """One writer at a time on one SQLite file: a thread lock within the process, and an
    advisory lock on `<database>.write-lock` between processes (`custody serve --workers`,
    the CLI beside a running service).

    SQLite lets one writer in and makes the others poll with sleeps that grow to 100 ms
    (its busy handler): with two processes writing, a group commit often slept on after
    the other process's commit was done, its request threads all waiting on it. Here a
    thread queues on a Python lock, which wakes the next writer at once, and a process
    polls the file lock at most a millisecond apart. The file lock only orders writers:
    SQLite's own lock still guards the data, and a writer that cannot get the file lock
    within the busy timeout goes on to meet SQLite's lock (and its error) as before.
    """

    def __init__(self, path: Path | None, timeout: float) -> None:
        self._thread_lock = threading.Lock()
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None
        self._fd_pid = 0
        self._holds_file = False

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            self._holds_file = self._path is not None and self._lock_file(self._path)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._holds_file and self._fd is not None:
                self._holds_file = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _lock_file(self, path: Path) -> bool:
        if self._fd is None or self._fd_pid != os.getpid():
            # A forked child shares its parent's open file, and with it the lock: its own.
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        deadline = time.monotonic() + self._timeout
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)


_WRITER_LOCKS: dict[str, _WriterLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    """On SQLite, one writer at a time (see `_WriterLock`); PostgreSQL needs nothing of this."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url)
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(key)
        if lock is None:
            database = engine.url.database
            on_disk = bool(database) and database != ":memory:" and "mode=memory" not in key
            path = Path(f"{database}.write-lock") if on_disk else None
            lock = _WRITER_LOCKS[key] = _WriterLock(path, _SQLITE_BUSY_TIMEOUT_S)
        return lock


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    with _migration_lock(engine) as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            connection.commit()
            try:
                yield connection
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                connection.commit()
        return
    database = engine.url.database
    lock_path = Path(f"{database}.migrate-lock") if database else None
    if lock_path is None or database == ":memory:":
        with engine.connect() as connection:
            yield connection
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        with engine.connect() as connection:
            yield connection
