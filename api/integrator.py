"""The integrator: sequenced events -> tlog-tiles, signed checkpoints; one process at a time.

Crash safety: every object is a pure function of the entries before it, so a restart that
recomputes from the last published checkpoint rewrites identical bytes (create-only writes
are then no-ops) and signs identical checkpoints (Ed25519 is deterministic). Order of
writes: bundles and tiles, the archived checkpoint, the mutable checkpoint, then the
database index. Whatever is published first is a prefix of what comes next.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import col, select

from api.database import read_scope, session_scope
from api.ids import new_id
from api.lease import Acquired, Lease
from api.logstore import CHECKPOINT, LogStore, checkpoint_key
from api.tables import LogEvent, LogState
from api.timestamper import record_pending
from custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from custody.merkle import empty_root
from custody.note import Signer, Verifier
from custody.tiles import Integration, bundle_path, integrate, tile_path

log = logging.getLogger("custody.integrator")

# Tiles and bundles a round writes at once: one per level of the tree that changed, and
# the level-0 tiles and bundles a large batch completes.
OBJECT_WRITERS = 8


@dataclass(frozen=True, slots=True)
class IntegratorConfig:
    batch_size: int
    batch_delay: float  # least seconds between the starts of two publishes, while busy
    poll: float  # seconds between looks for new entries
    lease: float  # seconds a lease lasts without renewal
    retention: timedelta


class Integrator:
    """Holds the lease, integrates pending entries, publishes checkpoints."""

    def __init__(
        self,
        *,
        engine: Engine,
        log_store: LogStore,
        signer: Signer,
        verifier: Verifier,
        origin: str,
        config: IntegratorConfig,
        clock: Callable[[], datetime],
        on_publish: Callable[[int], None] = lambda size: None,
        timestamp_targets: Sequence[tuple[str, int]] = (),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._on_publish = on_publish
        self._timestamp_targets = tuple(timestamp_targets)
        self._engine = engine
        self._log = log_store
        self._signer = signer
        self._verifier = verifier
        self._origin = origin
        self._config = config
        self._clock = clock
        self._lease = Lease(engine=engine, holder=new_id("i"), term=config.lease, clock=clock)
        self._size: int | None = None  # published size, known while we hold the lease
        self._last_publish = -math.inf  # monotonic seconds when the last publish began
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._writers: ThreadPoolExecutor | None = None  # made on the first round that needs it

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="custody-integrator", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop integrating and give the lease up, so that another process takes over at once.

        The thread gives it up as it ends. One still writing after `timeout` keeps it until
        then (or until it expires): released under a write in flight, a successor would
        publish while this holder still does.
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            self._release()
            self._close_writers()
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "the integrator is still writing after %.0f s; its lease is given up when "
                "the write ends or expires",
                timeout,
            )

    @property
    def holds_lease(self) -> bool:
        """Whether this process integrates now (and so also timestamps)."""
        return self._size is not None

    def notify(self) -> None:
        """A new entry was appended in this process: look now rather than at the next poll.

        Only while this process holds the lease: another's looking would find it held."""
        if self._size is not None:
            self._wake.set()

    def _close_writers(self) -> None:
        """End the writer threads; every round waits for its writes, so none is in flight."""
        writers, self._writers = self._writers, None
        if writers is not None:
            writers.shutdown(wait=False)

    def _run(self) -> None:
        try:
            self._integrate_until_stopped()
        finally:
            self._close_writers()
            try:
                self._release()
            except Exception:  # the lease then expires on its own
                log.exception("could not give up the integrator lease")

    def _integrate_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("integration step failed; retrying")
                self._size = None
                busy = False
                self._stop.wait(1.0)
            if not busy:
                self._wake.wait(self._config.poll)
                self._wake.clear()

    def step(self) -> bool:
        """One round: renew or take the lease, integrate a batch. True if it published."""
        if not self._renewed_lately() and not self._acquire():
            self._size = None
            return False
        if self._size is None:
            self._size = self._recover()
        entries = self._pending(self._size)
        if not entries:
            return False
        # At most one checkpoint per batch delay while entries keep coming, to gather fuller
        # batches; an entry after a quiet spell is published at once, not a delay later.
        wait = self._last_publish + self._config.batch_delay - self._monotonic()
        if len(entries) < self._config.batch_size and wait > 0:
            self._sleep(wait)
            entries = self._pending(self._size)
        self._last_publish = self._monotonic()
        self._publish(self._size, entries)
        return True

    def _pending(self, size: int) -> list[bytes]:
        with read_scope(self._engine) as session:
            rows = session.exec(
                select(LogEvent.index, LogEvent.entry)
                .where(col(LogEvent.index) >= size)
                .order_by(col(LogEvent.index))
                .limit(self._config.batch_size)
            ).all()
        entries = []
        for expected, (index, entry) in enumerate(rows, start=size):
            if index != expected:
                break  # not yet committed; indices are gap-free once committed
            entries.append(entry)
        return entries

    def _publish(self, size: int, entries: list[bytes]) -> None:
        result = integrate(
            old_size=size,
            new_entries=entries,
            read_tile=self._log.read_tile,
            read_bundle=self._log.read_bundle,
        )
        self._write_objects(result)
        signed = self._sign(result.new_size, result.root)
        if not self._hold():
            raise RuntimeError("lost the integrator lease before publishing")
        self._log.write(checkpoint_key(result.new_size), signed, retain_until=self._retain())
        self._write_latest(signed)
        self._record(result.new_size, result.root)
        self._size = result.new_size
        self._on_publish(result.new_size)

    def _write_latest(self, signed: bytes) -> None:
        """Replace the mutable `checkpoint`, if we still hold the lease.

        A write before it (a tile, the archived checkpoint) may have stalled past the lease,
        and another integrator may have taken over and published a larger size since: this
        one would then roll `checkpoint` back. What we archived stays, and is consistent.
        """
        if not self._hold():
            raise RuntimeError("lost the integrator lease before replacing the checkpoint")
        self._log.write_mutable(CHECKPOINT, signed)

    def _write_objects(self, result: Integration) -> None:
        """Write the round's tiles and entry bundles side by side, and wait for every one.

        They depend on nothing but the checkpoint written after them, so there is no order
        among them to keep; each is made durable on its own (an fsync on a local disk, a
        request to S3), and one after another those waits were most of a round. Every write
        ends, or fails, before this returns: the checkpoint covers only durable tiles, and no
        write of a failed round runs on into the next.
        """
        retain = self._retain()
        writes = [(bundle_path(b), data, b.width == 256) for b, data in result.bundles.items()]
        writes += [(tile_path(t), data, t.width == 256) for t, data in result.tiles.items()]
        if self._writers is None:
            self._writers = ThreadPoolExecutor(
                max_workers=OBJECT_WRITERS, thread_name_prefix="custody-integrator-write"
            )
        futures = [self._writers.submit(self._write_object, *write, retain) for write in writes]
        errors = [error for future in futures if (error := future.exception()) is not None]
        if errors:
            raise errors[0]

    def _write_object(self, path: str, data: bytes, full: bool, retain: datetime) -> None:
        if full:
            self._log.write(path, data, retain_until=retain)
        else:
            self._log.write_mutable(path, data)

    def _sign(self, size: int, root: bytes) -> bytes:
        return sign_checkpoint(Checkpoint(self._origin, size, root), self._signer)

    def _retain(self) -> datetime:
        return self._clock() + self._config.retention

    def _recover(self) -> int:
        """The published size: the larger of the latest and the newest archived checkpoint.

        A crash may fall between archiving checkpoint N and updating `checkpoint`; N is
        then published (signed, archived) and integration resumes after it.
        """
        latest = self._log.read_optional(CHECKPOINT)
        current = open_checkpoint(latest, self._verifier) if latest else None
        size = current.size if current else 0
        archived = [n for n in self._log.archived_sizes() if n > size]
        if archived:
            size = archived[-1]
            data = self._log.read(checkpoint_key(size))
            checkpoint = open_checkpoint(data, self._verifier)
            self._write_latest(data)
            self._record(size, checkpoint.root)
        elif current is None:
            signed = self._sign(0, empty_root())
            self._log.write(checkpoint_key(0), signed, retain_until=self._retain())
            self._write_latest(signed)
            self._record(0, empty_root())
        else:
            # A crash may also fall between `checkpoint` and the database row; readers go by
            # the row, so without this they would not see that size until the next publish.
            self._record(current.size, current.root)
        log.info("integrator %s resumes at size %d", self._lease.holder, size)
        return size

    def _record(self, size: int, root: bytes) -> None:
        """Index a published checkpoint, and ask for its timestamps, in one transaction that
        also renews the lease: while entries keep coming, the only write of a round."""
        now = self._clock()
        with session_scope(self._engine) as session:
            renewed = self._lease.extend_in(session, now)
            session.execute(
                update(LogState)
                .where(col(LogState.id) == 1, col(LogState.size) < size)
                .values(size=size, root=root.hex(), updated_at=now)
            )
            record_pending(session, size, self._timestamp_targets, now)
        self._lease.renewed(now if renewed else None)

    def _hold(self) -> bool:
        """Whether we hold the lease now: renewed lately, or else renewed in the database now.

        Checked before each checkpoint write. A write that stalls past the lease (a hung
        store) is followed by a stale renewal, so the database is asked, and a holder that
        lost the lease meanwhile does not write the next object.
        """
        return self._renewed_lately() or self._lease.renew()

    def _renewed_lately(self) -> bool:
        """Whether we hold the lease and renewed it within a third of its term.

        Nobody can take it before it expires, so the round need not write to the database
        to renew it again (a write transaction per poll, and per publish, otherwise).
        """
        return self._size is not None and self._lease.fresh()

    def _acquire(self) -> bool:
        """Renew our lease, or take a free or expired one and forget the size we knew."""
        acquired = self._lease.acquire()
        if acquired is Acquired.TAKEN:
            # Another integrator may have held the lease since we last did and published
            # past the size we remember: resuming from it would publish an older
            # `checkpoint`, a rollback.
            self._size = None
        return acquired is not None

    def _release(self) -> None:
        self._lease.release()
