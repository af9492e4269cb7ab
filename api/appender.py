"""Group commit for custody events: many requests' appends in one database transaction.

Appenders queue on the log's sequence row (a lock held to commit), so one transaction per
event caps throughput at one commit per event, and many threads waiting on one lock make a
convoy. One thread takes whatever work is queued, runs it in a single transaction and commits
once; neighbouring items of one kind (ingests) run as one set of statements for them all.
Should an item fail, the batch is rolled back and run again with each item in a savepoint
(a failing item rolls back alone, leaving no gap): savepoints cost two statements and the
ORM's bookkeeping per item, so the common case does without.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from api.database import session_scope
from api.sequencer import lock_sequence

T = TypeVar("T")
Item = TypeVar("Item")
log = logging.getLogger("custody.appender")


@dataclass(frozen=True, slots=True)
class _Work:
    run: Callable[[Session], Any]
    future: Future[Any]
    # Runs several queued items of one kind at once (their `item`s, in order; a result
    # each), in fewer statements than their `run`s would take one by one.
    bulk: Callable[[Session, list[Any]], list[Any]] | None = None
    item: Any = None


class AppenderClosedError(RuntimeError):
    """The service is shutting down: an append that arrives now is not made."""


class Appender:
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: queue.Queue[_Work | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        run: Callable[[Session], T],
        *,
        bulk: Callable[[Session, list[Item]], list[T]] | None = None,
        item: Item | None = None,
    ) -> T:
        """Run `run(session)` in the next group transaction; return its result once committed.

        With `bulk`, items queued next to each other with the same `bulk` run together as
        `bulk(session, [their items])`, which must do what their `run`s would; should it
        fail, each item runs again alone, through its `run`. After `stop` has begun,
        AppenderClosedError: nothing is queued behind the thread's last batch, where no one
        would ever answer it.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise AppenderClosedError("the service is shutting down")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="custody-appender", daemon=True
                )
                self._thread.start()
            self._queue.put(_Work(run, future, bulk, item))
        return future.result()

    def stop(self) -> None:
        """Commit every append queued so far, then refuse new ones."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)  # behind every queued append: the lock orders them
        if thread is not None:
            thread.join(timeout=30)

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Work]) -> None:
        results: list[tuple[_Work, Any, BaseException | None]]
        try:
            try:
                results = self._run_together(batch)
            except _ItemFailedError as failed:
                if len(batch) == 1:  # rolled back alone: that is the item's own outcome
                    results = [(batch[0], None, failed.error)]
                else:
                    results = self._run_isolated(batch)
        except BaseException as exc:  # the commit failed: nothing of the batch happened
            log.exception("group commit of %d appends failed", len(batch))
            for work in batch:
                if not work.future.done():
                    work.future.set_exception(exc)
            return
        for work, value, error in results:
            if error is not None:
                work.future.set_exception(error)
            else:
                work.future.set_result(value)
        self._on_commit()

    def _run_together(self, batch: list[_Work]) -> list[tuple[_Work, Any, BaseException | None]]:
        """The usual case: every item succeeds, and needs no savepoint of its own."""
        with session_scope(self._engine) as session:
            lock_sequence(session)
            results: list[tuple[_Work, Any, BaseException | None]] = []
            for group in _groups(batch):
                try:
                    if len(group) > 1 and group[0].bulk is not None:
                        values = group[0].bulk(session, [work.item for work in group])
                    else:
                        values = [group[0].run(session)]
                except Exception as exc:  # roll the whole batch back, then isolate the items
                    raise _ItemFailedError(exc) from exc
                results.extend(
                    (work, value, None) for work, value in zip(group, values, strict=True)
                )
            return results

    def _run_isolated(self, batch: list[_Work]) -> list[tuple[_Work, Any, BaseException | None]]:
        """Again after a failure, each item in a savepoint: a failing item rolls back alone."""
        with session_scope(self._engine) as session:
            lock_sequence(session)
            return [_run_one(session, work) for work in batch]


class _ItemFailedError(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _groups(batch: list[_Work]) -> list[list[_Work]]:
    """Runs of neighbouring items with the same bulk function; an item without one alone."""
    groups: list[list[_Work]] = []
    for work in batch:
        if groups and work.bulk is not None and groups[-1][0].bulk is work.bulk:
            groups[-1].append(work)
        else:
            groups.append([work])
    return groups


def _run_one(session: Session, work: _Work) -> tuple[_Work, Any, BaseException | None]:
    try:
        with session.begin_nested():
            return work, work.run(session), None
    except Exception as exc:  # this item only; its savepoint is rolled back
        return work, None, exc
