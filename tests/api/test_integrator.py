"""The integrator: a crash at every write, the lease hand-over, never two inconsistent checkpoints.

Each test drives `Integrator.step()` directly against SQLite (or PostgreSQL) and an in-memory
store wrapped to record every write and to die at a chosen one, as kill -9 would.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Connection, Engine, event
from sqlmodel import col, select

from api.database import build_engine, migrate, session_scope
from api.integrator import Integrator, IntegratorConfig
from api.logservice import LogService
from api.logstore import LogStore
from api.sequencer import append_event
from api.tables import LogEvent, LogState
from cli.sources import StoreSource
from custody.audit import audit_log, iter_failures
from custody.checkpoint import open_checkpoint
from custody.events import Subject, ingested
from custody.merkle import leaf_hash, root_from_leaf_hashes
from custody.note import generate_signer
from custody.receipt import parse_receipt, verify_receipt
from storage import (
    LockInfo,
    ObjectExistsError,
    ObjectInfo,
    ObjectStore,
    PutResult,
    StorageError,
)
from storage.memory import MemoryObjectStore
from tests.e2e.servers import throwaway_database

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORIGIN = "custody.integrator.test"
SIGNER = generate_signer(ORIGIN)
VERIFIER = SIGNER.verifier()
PREFIX = "log/"
LEASE = 10.0  # seconds
# Appended between integrations: sizes 1, 121, 261 and 300. With batches of 128 the step
# 249 -> 261 crosses the first full tile (and bundle) and starts a level-1 tile.
BATCHES = (1, 120, 140, 39)
TOTAL = sum(BATCHES)
BATCH_SIZE = 128
# Puts a crash-free run of BATCHES makes; the crash matrix tries a crash at each of them.
WRITES = 25


class SimulatedCrashError(Exception):
    """The process died here (kill -9): nothing after this point ran."""


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    data: bytes
    mutable: bool


class RecordingStore:
    """An object store that records every write and can die at one of them.

    `crash_if(n, key)` is asked before the n-th put (from 0); when it says yes, the process
    "dies" before the write, or just after it lands if `crash_after`. A dead process writes
    nothing more (the integrator writes a round's tiles side by side: the others of that
    round then fail too) until `restart`.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.puts: list[Put] = []
        self.attempts = 0
        self.crash_if: Callable[[int, str], bool] = lambda _n, _key: False
        self.crash_after = False
        self.on_put: Callable[[str], None] = lambda _key: None
        self.dead = False
        self._lock = threading.Lock()

    def restart(self) -> None:
        """A new process: it writes again, and no longer crashes."""
        self.crash_if = lambda _n, _key: False
        self.dead = False

    @property
    def supports_lock(self) -> bool:
        return self.inner.supports_lock

    def put(
        self,
        key: str,
        source: BinaryIO,
        *,
        sha256: str,
        size: int,
        retain_until: datetime | None = None,
        mutable: bool = False,
    ) -> PutResult:
        data = source.read()
        with self._lock:
            if self.dead:
                raise SimulatedCrashError(f"dead before writing {key}")
            crash = self.crash_if(self.attempts, key)
            self.attempts += 1
            self.dead = crash
        if crash and not self.crash_after:
            raise SimulatedCrashError(f"died before writing {key}")
        self.on_put(key)
        # Recorded before the store answers: a rejected rewrite is still an attempt to rewrite.
        self.puts.append(Put(key, data, mutable))
        result = self.inner.put(
            key,
            io.BytesIO(data),
            sha256=sha256,
            size=size,
            retain_until=retain_until,
            mutable=mutable,
        )
        if crash:
            raise SimulatedCrashError(f"died just after writing {key}")
        return result

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)

    def lock_info(self, key: str) -> LockInfo | None:
        return self.inner.lock_info(key)


# ---------------------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------------------


def sqlite_engine(path: Path) -> Engine:
    engine = build_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = sqlite_engine(tmp_path / "custody.db")
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """SQLite, and PostgreSQL as the multi-process deployment runs it."""
    if request.param == "sqlite":
        eng = sqlite_engine(tmp_path / "custody.db")
        yield eng
        eng.dispose()
        return
    with throwaway_database() as url:
        eng = build_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()


def append(engine: Engine, count: int) -> None:
    """Sequence `count` more ingest events in one transaction."""
    with session_scope(engine) as session:
        for _ in range(count):
            event = ingested(
                event_id=f"e_{os.urandom(8).hex()}",
                time=NOW,
                actor="u_test",
                case="c_test",
                subject=Subject(sha256=os.urandom(32).hex(), size=1, media_type="image/jpeg"),
            )
            append_event(session, event, now=NOW)


def new_integrator(
    engine: Engine,
    store: ObjectStore,
    clock: FakeClock,
    *,
    batch_size: int = BATCH_SIZE,
    batch_delay: float = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> Integrator:
    """An integrator as `api.app.compose` builds it: its own LogStore, as a new process has."""
    return Integrator(
        engine=engine,
        log_store=LogStore(store, PREFIX),
        signer=SIGNER,
        verifier=VERIFIER,
        origin=ORIGIN,
        clock=clock,
        config=IntegratorConfig(
            batch_size=batch_size,
            batch_delay=batch_delay,
            poll=0.01,
            lease=LEASE,
            retention=timedelta(days=1),
        ),
        monotonic=clock.monotonic,
        sleep=sleep,
    )


def log_service(engine: Engine, store: ObjectStore) -> LogService:
    return LogService(engine=engine, log_store=LogStore(store, PREFIX), verifier=VERIFIER)


def drain(integrator: Integrator) -> None:
    """Step until nothing is pending (bounded: a step that never ends the loop is a bug)."""
    for _ in range(100):
        if not integrator.step():
            return
    raise AssertionError("the integrator kept publishing with nothing appended")


def receipts(engine: Engine, store: ObjectStore) -> list[bytes]:
    """Receipts for the first, a middle and the last integrated entry, as a client gets them."""
    service = log_service(engine, store)
    size = service.published_size()
    return [service.receipt(index)[1] for index in sorted({0, size // 2, size - 1})]


# ---------------------------------------------------------------------------------------
# What must hold after any history
# ---------------------------------------------------------------------------------------


def db_entries(engine: Engine) -> list[bytes]:
    with session_scope(engine) as session:
        return list(session.exec(select(LogEvent.entry).order_by(col(LogEvent.index))).all())


def read(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


def mutable_checkpoint_sizes(store: RecordingStore) -> list[int]:
    return [
        open_checkpoint(put.data, VERIFIER).size
        for put in store.puts
        if put.key == PREFIX + "checkpoint"
    ]


def assert_log_sound(
    engine: Engine, store: RecordingStore, before: list[bytes], *, size: int
) -> None:
    """The log of `size` audits clean and agrees with every receipt and checkpoint ever given."""
    report = audit_log(StoreSource(store, PREFIX), VERIFIER)
    assert report.ok, list(iter_failures(report))
    assert (report.size, report.entries) == (size, size)
    leaves = [leaf_hash(entry) for entry in db_entries(engine)]
    assert len(leaves) == size

    def root_at(n: int) -> bytes:
        return root_from_leaf_hashes(leaves[:n])

    assert report.root == root_at(size)
    # Every archived checkpoint is a prefix of the final log (audit_log checks this too;
    # recomputing from the database makes it independent of the tiles).
    for n in StoreSource(store, PREFIX).archived_sizes():
        archived = open_checkpoint(read(store, f"{PREFIX}checkpoints/{n}"), VERIFIER)
        assert archived.root == root_at(n), f"checkpoints/{n} is not a prefix of the log"
    for receipt in before:
        verified = verify_receipt(parse_receipt(receipt), VERIFIER, file_sha256=None)
        assert verified.checkpoint.root == root_at(verified.checkpoint.size)
        assert leaf_hash(verified.entry) == leaves[verified.index]
    assert_no_rewrites(store)
    sizes = mutable_checkpoint_sizes(store)
    assert sizes == sorted(sizes), f"the published checkpoint went back: {sizes}"
    service = log_service(engine, store)
    assert service.published_size() == size, "the database lags the published checkpoint"
    verify_receipt(parse_receipt(service.receipt(size - 1)[1]), VERIFIER, file_sha256=None)


def assert_no_rewrites(store: RecordingStore) -> None:
    """Every key but `checkpoint` only ever got the bytes it first got: create-only objects,
    and partial tiles too, whose paths name their width and so fix their content."""
    first: dict[str, bytes] = {}
    for put in store.puts:
        if put.key == PREFIX + "checkpoint":
            continue
        assert first.setdefault(put.key, put.data) == put.data, f"{put.key} rewritten"


# ---------------------------------------------------------------------------------------
# Crash at every write
# ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    engine: Engine
    store: RecordingStore
    clock: FakeClock
    receipts: list[bytes]


def run_until_crash(scenario: Scenario) -> int:
    """Append and integrate BATCHES with one integrator; the batches appended when it died."""
    integrator = new_integrator(scenario.engine, scenario.store, scenario.clock)
    for done, count in enumerate(BATCHES):
        append(scenario.engine, count)
        try:
            drain(integrator)
        except SimulatedCrashError:
            return done + 1
        scenario.receipts += receipts(scenario.engine, scenario.store)
    return len(BATCHES)


def restart_and_finish(scenario: Scenario, appended: int) -> None:
    """A new process after the lease of the dead one expired: integrate everything."""
    scenario.store.restart()
    scenario.clock.advance(LEASE + 1)
    integrator = new_integrator(scenario.engine, scenario.store, scenario.clock)
    drain(integrator)
    for count in BATCHES[appended:]:
        append(scenario.engine, count)
        drain(integrator)


def new_scenario(engine: Engine) -> Scenario:
    return Scenario(engine, RecordingStore(MemoryObjectStore()), FakeClock(), [])


def test_a_crash_free_run_makes_the_writes_the_crash_matrix_covers(engine: Engine) -> None:
    scenario = new_scenario(engine)
    assert run_until_crash(scenario) == len(BATCHES)
    assert scenario.store.attempts == WRITES, "update WRITES to the new count"
    assert mutable_checkpoint_sizes(scenario.store) == [0, 1, 121, 249, 261, 300]
    assert_log_sound(engine, scenario.store, scenario.receipts, size=TOTAL)


@pytest.mark.parametrize("after", [False, True], ids=["before-write", "after-write"])
@pytest.mark.parametrize("crash_at", range(WRITES))
def test_a_crash_at_any_write_recovers_to_a_consistent_log(
    engine: Engine, crash_at: int, after: bool
) -> None:
    scenario = new_scenario(engine)
    scenario.store.crash_if = lambda n, _key: n == crash_at
    scenario.store.crash_after = after
    appended = run_until_crash(scenario)
    assert scenario.store.attempts == crash_at + 1, "the crash did not happen"
    restart_and_finish(scenario, appended)
    assert_log_sound(engine, scenario.store, scenario.receipts, size=TOTAL)


def test_a_rewrite_with_other_bytes_surfaces(engine: Engine) -> None:
    """The guard the crash matrix relies on: a create-only key with new bytes fails the step."""
    store = RecordingStore(MemoryObjectStore())
    append(engine, 3)
    integrator = new_integrator(engine, store, FakeClock())
    drain(integrator)
    planted = b"not the first entry bundle"
    store.inner.put(
        PREFIX + "tile/entries/000",
        io.BytesIO(planted),
        sha256=hashlib.sha256(planted).hexdigest(),
        size=len(planted),
    )
    append(engine, 253)
    with pytest.raises(ObjectExistsError):
        drain(integrator)


def test_after_a_crash_between_archive_and_checkpoint_the_archive_is_republished(
    engine: Engine,
) -> None:
    scenario = new_scenario(engine)
    scenario.store.crash_if = lambda _n, key: key == PREFIX + "checkpoints/121"
    scenario.store.crash_after = True
    appended = run_until_crash(scenario)
    assert appended == 2
    assert open_checkpoint(read(scenario.store, PREFIX + "checkpoint"), VERIFIER).size == 1

    scenario.store.restart()
    scenario.clock.advance(LEASE + 1)
    integrator = new_integrator(engine, scenario.store, scenario.clock)
    assert integrator.step() is False  # recovers, and nothing is pending past 121
    archived = read(scenario.store, PREFIX + "checkpoints/121")
    assert read(scenario.store, PREFIX + "checkpoint") == archived
    assert scenario.store.puts[-1] == Put(PREFIX + "checkpoint", archived, mutable=True)
    assert log_service(engine, scenario.store).published_size() == 121
    for count in BATCHES[appended:]:
        append(engine, count)
        drain(integrator)
    assert_log_sound(engine, scenario.store, scenario.receipts, size=TOTAL)


def test_a_receipt_asked_while_the_database_lags_the_checkpoint_verifies(engine: Engine) -> None:
    """Between writing `checkpoint` and recording it, readers see a newer store than index."""
    scenario = new_scenario(engine)
    published = 0

    def after_third_checkpoint(_n: int, key: str) -> bool:
        nonlocal published
        published += key == PREFIX + "checkpoint"
        return published == 3  # sizes 0, 1, then 121

    scenario.store.crash_if = after_third_checkpoint
    scenario.store.crash_after = True
    assert run_until_crash(scenario) == 2
    service = log_service(engine, scenario.store)
    assert service.published_size() == 1
    # Under whichever published checkpoint the service picks, the receipt must verify.
    verified = verify_receipt(parse_receipt(service.receipt(0)[1]), VERIFIER, file_sha256=None)
    assert (verified.index, verified.checkpoint.size in (1, 121)) == (0, True)


def test_one_service_serves_the_same_proofs_as_a_fresh_one_while_the_log_grows(
    engine: Engine,
) -> None:
    """Subtree hashes and bundles remembered at one size must be right at every later one."""
    store = MemoryObjectStore()
    integrator = new_integrator(engine, store, FakeClock())
    service = log_service(engine, store)
    for count in BATCHES:
        append(engine, count)
        drain(integrator)
        size = service.published_size()
        fresh = log_service(engine, store)
        for index in range(size):
            _, receipt = service.receipt(index, size)
            assert receipt == fresh.receipt(index)[1], f"index {index} at size {size}"
            assert verify_receipt(parse_receipt(receipt), VERIFIER, file_sha256=None).index == index
        assert service.consistency(1, size) == fresh.consistency(1, size)


# ---------------------------------------------------------------------------------------
# The lease: one integrator at a time
# ---------------------------------------------------------------------------------------


@dataclass
class Pair:
    """Two integrators, as in two processes, on one database and one store."""

    engine: Engine
    store: RecordingStore
    clock: FakeClock
    first: Integrator
    second: Integrator


@pytest.fixture
def pair(any_engine: Engine) -> Pair:
    store = RecordingStore(MemoryObjectStore())
    clock = FakeClock()
    first = new_integrator(any_engine, store, clock, batch_size=50)
    second = new_integrator(any_engine, store, clock, batch_size=50)
    return Pair(any_engine, store, clock, first, second)


def published(store: RecordingStore) -> int:
    return open_checkpoint(read(store, PREFIX + "checkpoint"), VERIFIER).size


def lease_holder(engine: Engine) -> str | None:
    with session_scope(engine) as session:
        state = session.get(LogState, 1)
        assert state is not None
        return state.lease_holder


def test_only_the_lease_holder_integrates(pair: Pair) -> None:
    append(pair.engine, 10)
    assert pair.first.step() is True
    holder = lease_holder(pair.engine)
    append(pair.engine, 10)
    writes = len(pair.store.puts)
    assert pair.second.step() is False
    assert len(pair.store.puts) == writes, "a second integrator wrote without the lease"
    assert lease_holder(pair.engine) == holder
    drain(pair.first)
    assert published(pair.store) == 20
    assert_log_sound(pair.engine, pair.store, [], size=20)


def test_when_the_holder_stops_the_other_continues_from_the_published_size(pair: Pair) -> None:
    append(pair.engine, 10)
    drain(pair.first)
    pair.first.stop()
    assert lease_holder(pair.engine) is None
    append(pair.engine, 10)
    drain(pair.second)
    assert StoreSource(pair.store, PREFIX).archived_sizes() == [0, 10, 20]
    assert PREFIX + "tile/entries/000.p/20" in {put.key for put in pair.store.puts}
    assert_log_sound(pair.engine, pair.store, [], size=20)


def test_when_the_lease_expires_the_other_takes_over(pair: Pair) -> None:
    append(pair.engine, 10)
    drain(pair.first)
    append(pair.engine, 10)
    pair.clock.advance(LEASE - 1)
    assert pair.second.step() is False  # the lease still runs
    pair.clock.advance(2)
    assert pair.second.step() is True
    assert published(pair.store) == 20
    append(pair.engine, 10)
    writes = len(pair.store.puts)
    assert pair.first.step() is False, "the old holder integrated after losing its lease"
    assert len(pair.store.puts) == writes
    drain(pair.second)
    assert_log_sound(pair.engine, pair.store, [], size=30)


def test_a_holder_that_lost_its_lease_mid_step_does_not_publish(pair: Pair) -> None:
    append(pair.engine, 10)
    drain(pair.first)
    append(pair.engine, 10)  # the first integrator's next batch ends at 20

    def stall(key: str) -> None:
        # While the first writes its tiles it stalls past its lease; the second takes over
        # and publishes a larger tree before the first gets to its checkpoint.
        pair.store.on_put = lambda _key: None
        pair.clock.advance(LEASE + 1)
        append(pair.engine, 10)
        drain(pair.second)

    pair.store.on_put = stall
    with pytest.raises(RuntimeError, match="lost the integrator lease"):
        pair.first.step()
    assert StoreSource(pair.store, PREFIX).archived_sizes() == [0, 10, 30]
    assert published(pair.store) == 30
    assert_log_sound(pair.engine, pair.store, [], size=30)


def test_a_holder_that_lost_its_lease_while_archiving_does_not_roll_the_checkpoint_back(
    pair: Pair,
) -> None:
    append(pair.engine, 10)
    drain(pair.first)
    append(pair.engine, 10)  # the first integrator's next batch ends at 20

    def stall(key: str) -> None:
        # The first renewed its lease, then its write of the archived checkpoint stalls past
        # the lease; the second takes over and publishes 30 before that write returns.
        if key == PREFIX + "checkpoints/20":
            pair.store.on_put = lambda _key: None
            pair.clock.advance(LEASE + 1)
            append(pair.engine, 10)
            drain(pair.second)

    pair.store.on_put = stall
    with pytest.raises(RuntimeError, match="lost the integrator lease"):
        pair.first.step()
    assert mutable_checkpoint_sizes(pair.store) == [0, 10, 30]
    assert published(pair.store) == 30
    # The archived 20 stays: signed over a prefix of 30, it is consistent with it.
    assert StoreSource(pair.store, PREFIX).archived_sizes() == [0, 10, 20, 30]
    assert_log_sound(pair.engine, pair.store, [], size=30)


def test_a_holder_whose_lease_was_taken_and_released_recovers_before_publishing(
    pair: Pair,
) -> None:
    """A stalled holder must not resume from the size it remembers: that checkpoint is old."""
    append(pair.engine, 10)
    drain(pair.first)
    pair.clock.advance(LEASE + 1)
    append(pair.engine, 100)
    drain(pair.second)  # 60, then 110
    pair.second.stop()
    append(pair.engine, 5)
    assert pair.first.step() is True
    assert published(pair.store) == 115
    assert_log_sound(pair.engine, pair.store, [], size=115)


def lease_expiry(engine: Engine) -> datetime | None:
    with session_scope(engine) as session:
        state = session.get(LogState, 1)
        assert state is not None
        return state.lease_expires_at


def test_a_holder_renews_in_the_database_only_once_a_third_of_the_lease_has_passed(
    pair: Pair,
) -> None:
    append(pair.engine, 10)
    drain(pair.first)
    renewed = lease_expiry(pair.engine)
    pair.clock.advance(LEASE / 3 - 1)
    assert pair.first.step() is False
    assert lease_expiry(pair.engine) == renewed, "an idle round wrote the lease again"
    append(pair.engine, 5)
    assert pair.first.step() is True  # publishing renews, whatever the round skipped
    assert lease_expiry(pair.engine) == pair.clock.now + timedelta(seconds=LEASE)
    pair.clock.advance(LEASE / 3)
    assert pair.first.step() is False
    assert lease_expiry(pair.engine) == pair.clock.now + timedelta(seconds=LEASE)
    assert_log_sound(pair.engine, pair.store, [], size=15)


def database_writes(engine: Engine) -> list[list[str]]:
    """Each transaction that wrote, as the list of its writing statements (from now on)."""
    writes: list[list[str]] = []
    pending: dict[int, list[str]] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def statement(conn: Connection, _cursor: object, sql: str, *_args: object) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            pending.setdefault(id(conn), []).append(" ".join(sql.split()[:3]))

    @event.listens_for(engine, "commit")
    def commit(conn: Connection) -> None:
        if id(conn) in pending:
            writes.append(pending.pop(id(conn)))

    return writes


def test_a_process_without_the_lease_looks_at_it_without_writing(pair: Pair) -> None:
    """On SQLite every write queues behind the ingests' group commits for the one writer
    lock; a process asking for a held lease each poll must not take it to change nothing."""
    append(pair.engine, 10)
    drain(pair.first)
    writes = database_writes(pair.engine)
    for _ in range(3):
        assert pair.second.step() is False
    assert writes == []
    pair.clock.advance(LEASE + 1)  # expired: now it takes it
    assert pair.second.step() is False  # nothing pending
    assert lease_holder(pair.engine) is not None
    assert writes, "the expired lease was not taken"


def test_a_round_under_a_fresh_lease_writes_the_database_once(pair: Pair) -> None:
    """Its index row, its timestamp rows and the lease's renewal in one transaction."""
    append(pair.engine, 10)
    drain(pair.first)
    append(pair.engine, 10)
    writes = database_writes(pair.engine)
    assert pair.first.step() is True
    assert len(writes) == 1, writes
    assert lease_expiry(pair.engine) == pair.clock.now + timedelta(seconds=LEASE)
    assert_log_sound(pair.engine, pair.store, [], size=20)


def test_a_round_writes_its_tiles_and_bundles_side_by_side(engine: Engine) -> None:
    """Each waits on its own durability (an fsync, an S3 request): one after another,
    those waits were most of a round."""
    store = RecordingStore(MemoryObjectStore())
    together = threading.Barrier(2, timeout=10)

    def meet(key: str) -> None:
        if "/tile/" in key:
            together.wait()  # broken (and the round failed) if the other never comes

    store.on_put = meet
    append(engine, 10)  # the entry bundle and the level-0 tile, both partial
    integrator = new_integrator(engine, store, FakeClock())
    assert integrator.step() is True
    integrator.stop()
    assert_log_sound(engine, store, [], size=10)


def test_a_round_with_a_failed_write_ends_after_its_other_writes(engine: Engine) -> None:
    """No write of a failed round runs on into the next one."""
    store = RecordingStore(MemoryObjectStore())
    slow_done = threading.Event()

    def fail_one(key: str) -> None:
        if "/tile/entries/" in key:
            raise StorageError("the disk is full")
        if "/tile/0/" in key:
            time.sleep(0.3)
            slow_done.set()

    store.on_put = fail_one
    append(engine, 10)
    integrator = new_integrator(engine, store, FakeClock())
    with pytest.raises(StorageError, match="disk is full"):
        integrator.step()
    assert slow_done.is_set(), "the round ended with a write still in flight"
    assert not any("checkpoints/10" in put.key for put in store.puts)
    store.on_put = lambda _key: None
    drain(integrator)
    integrator.stop()
    assert_log_sound(engine, store, [], size=10)


def test_the_thread_integrates_and_releases_the_lease_on_stop(engine: Engine) -> None:
    store = RecordingStore(MemoryObjectStore())
    integrator = new_integrator(engine, store, FakeClock())
    integrator.start()
    try:
        append(engine, 20)
        integrator.notify()
        deadline = time.monotonic() + 10
        while log_service(engine, store).published_size() < 20:
            assert time.monotonic() < deadline, "the integrator thread did not publish"
            time.sleep(0.01)
    finally:
        integrator.stop()
    assert lease_holder(engine) is None
    assert_log_sound(engine, store, [], size=20)


def test_a_thread_stopped_mid_write_keeps_the_lease_until_the_write_ends(engine: Engine) -> None:
    """Released under a write in flight, a successor would publish beside the stalled holder."""
    store = RecordingStore(MemoryObjectStore())
    clock = FakeClock()
    integrator = new_integrator(engine, store, clock)
    successor = new_integrator(engine, store, clock)
    stalled, resume = threading.Event(), threading.Event()

    def stall(_key: str) -> None:
        stalled.set()
        assert resume.wait(10), "the test never resumed the stalled write"

    store.on_put = stall
    integrator.start()
    try:
        append(engine, 20)
        integrator.notify()
        assert stalled.wait(10), "the integrator thread did not start writing"
        integrator.stop(timeout=0.1)
        assert lease_holder(engine) is not None
        assert successor.step() is False, "a successor took the lease of a holder mid-write"
    finally:
        store.on_put = lambda _key: None
        resume.set()
        integrator.stop(timeout=10)
    assert lease_holder(engine) is None
    drain(successor)
    assert_log_sound(engine, store, [], size=20)


def test_checkpoints_are_spaced_by_the_batch_delay_only_while_entries_keep_coming(
    engine: Engine,
) -> None:
    clock, slept = FakeClock(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    store = RecordingStore(MemoryObjectStore())
    integrator = new_integrator(engine, store, clock, batch_delay=0.5, sleep=sleep)
    append(engine, 1)
    assert integrator.step() is True
    assert slept == []  # the first entry after a quiet spell: published at once
    clock.advance(0.2)
    append(engine, 3)
    assert integrator.step() is True
    assert slept == [pytest.approx(0.3)]  # busy: waits out the rest of the delay, gathering
    assert log_service(engine, store).published_size() == 4
    clock.advance(0.5)
    append(engine, 1)
    assert integrator.step() is True
    assert slept == [pytest.approx(0.3)]  # a full delay since the last publish: no wait
    append(engine, BATCH_SIZE)
    assert integrator.step() is True
    assert slept == [pytest.approx(0.3)]  # a full batch never waits
    assert_log_sound(engine, store, [], size=5 + BATCH_SIZE)
