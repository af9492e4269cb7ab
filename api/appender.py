"""Group commit for custody events: many requests' appends in one database transaction.

Appenders queue on the log's sequence row (a lock held to commit), so one transaction per
event caps throughput at one commit per event, and many threads waiting on one lock make a
convoy. One thread takes whatever work is queued, runs each item in a savepoint of a single
transaction (a failing item rolls back alone, leaving no gap), and commits once.
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
log = logging.getLogger("custody.appender")


@dataclass(frozen=True, slots=True)
class _Work:
    run: Callable[[Session], Any]
    future: Future[Any]


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

    def submit(self, run: Callable[[Session], T]) -> T:
        """Run `run(session)` in the next group transaction; return its result once committed."""
        self._ensure_started()
        future: Future[T] = Future()
        self._queue.put(_Work(run, future))
        return future.result()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="custody-appender", daemon=True
                )
                self._thread.start()

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
        results: list[tuple[_Work, Any, BaseException | None]] = []
        try:
            with session_scope(self._engine) as session:
                lock_sequence(session)
                for work in batch:
                    results.append(_run_one(session, work))
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


def _run_one(session: Session, work: _Work) -> tuple[_Work, Any, BaseException | None]:
    try:
        with session.begin_nested():
            return work, work.run(session), None
    except Exception as exc:  # this item only; its savepoint is rolled back
        return work, None, exc
