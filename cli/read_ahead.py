"""Reading ahead for a remote audit source: what the audit announces is fetched several at
a time, so that each read does not wait a whole round trip."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, BinaryIO, Generic, TypeVar

from cli.sources import AuditSource

# Reads in flight for a remote source: each waits a round trip, so a few at once keep the
# auditor's link busy; the window bounds what is held unread (bundles are at most a few MB).
READ_AHEAD_WORKERS = 8
READ_AHEAD_WINDOW = 32
K = TypeVar("K")
V = TypeVar("V")


_END: Any = object()  # no more keys announced


class _Ahead(Generic[K, V]):
    """`fetch`'s results for announced keys: fetched in order on `pool`, at most `window`
    of them held until asked for; a key not announced (or asked for again) is fetched then."""

    def __init__(self, fetch: Callable[[K], V], pool: ThreadPoolExecutor, window: int) -> None:
        self._fetch = fetch
        self._pool = pool
        self._window = window
        self._plan: Iterator[K] = iter(())
        self._ahead: dict[K, Future[V]] = {}
        self._lock = threading.Lock()

    def announce(self, keys: Iterator[K]) -> None:
        with self._lock:
            self._plan = itertools.chain(self._plan, keys)
            self._fill()

    def get(self, key: K) -> V:
        with self._lock:
            future = self._ahead.pop(key, None)
            self._fill()
        return self._fetch(key) if future is None else future.result()

    def _fill(self) -> None:
        while len(self._ahead) < self._window:
            key = next(self._plan, _END)
            if key is _END:
                return
            if key not in self._ahead:
                self._ahead[key] = self._pool.submit(self._fetch, key)


class ReadAhead:
    """A source that fetches what the audit announces (`prefetch`, `prefetch_timestamps`)
    before it is asked for, several at a time: over S3 or HTTP, each read otherwise waits a
    whole round trip.

    Every answer is exactly the wrapped source's for the same question, errors included;
    what is asked out of the announced order is simply fetched then.
    """

    remote = True

    def __init__(
        self,
        source: AuditSource,
        *,
        workers: int = READ_AHEAD_WORKERS,
        window: int = READ_AHEAD_WINDOW,
    ) -> None:
        self._source = source
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="custody-read-ahead")
        self._window = window
        self._reads = _Ahead(source.read, self._pool, window)
        self._timestamps = _Ahead(source.timestamps, self._pool, window)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def prefetch(self, paths: Iterator[str]) -> None:
        """Fetch `paths` ahead, in order, after those announced before."""
        self._reads.announce(paths)

    def prefetch_timestamps(self, sizes: Iterator[int]) -> None:
        """Fetch the timestamps of checkpoints `sizes` ahead, in order."""
        self._timestamps.announce(sizes)

    def read(self, path: str) -> bytes | None:
        return self._reads.get(path)

    def map_ahead(self, fn: Callable[[K], V], items: Iterable[K]) -> Iterator[V]:
        """`fn` of each item, in order, run ahead on the workers (a window of them at once):
        re-hashing sealed objects streams each, so only the window's buffers are held."""
        pending: deque[Future[V]] = deque()
        for item in items:
            pending.append(self._pool.submit(fn, item))
            if len(pending) >= self._window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def timestamps(self, size: int) -> list[tuple[str, bytes]]:
        return self._timestamps.get(size)

    def archived_sizes(self) -> list[int]:
        return self._source.archived_sizes()

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        return self._source.sealed_kinds

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        return self._source.open_sealed(kind, sha256)
