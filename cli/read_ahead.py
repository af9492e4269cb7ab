"""Reading ahead for a remote audit source: what the audit announces is fetched several at
a time, so that each read does not wait a whole round trip."""

from __future__ import annotations

import io
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, BinaryIO, Generic, TypeVar, cast

from cli.sources import AuditSource
from custody.errors import UnreadableObjectError

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


class _Cancellable(io.RawIOBase):
    """A sealed object's stream that ends with CancelledError once the read-ahead closes.

    A worker may be re-hashing an original of many GB when the audit stops: it must stop at
    its next read rather than hold close() until the end, and the stream it reads must not
    be closed under a read in flight (whoever ends last closes it).
    """

    def __init__(
        self, stream: BinaryIO, stopped: threading.Event, forget: Callable[[_Cancellable], None]
    ) -> None:
        super().__init__()
        self._stream = stream
        self._stopped = stopped
        self._forget = forget
        self._lock = threading.Lock()
        self._reading = False
        self._released = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with self._lock:
            self._check()
            self._reading = True
        try:
            data = self._stream.read(-1 if size is None else size)
        finally:
            with self._lock:
                self._reading = False
                if self._released:
                    self._stream.close()
        self._check()
        return data

    def cancel(self) -> None:
        with self._lock:
            self._release()

    def close(self) -> None:
        if self.closed:  # closed already, and forgotten: as __del__ finds it
            return
        with self._lock:
            self._release()
        super().close()
        self._forget(self)

    def _release(self) -> None:
        """Close the stream now, or after the read in flight returns."""
        self._released = True
        if not self._reading:
            self._stream.close()

    def _check(self) -> None:
        if self._stopped.is_set():
            raise CancelledError("the audit's read-ahead was closed")
        if self.closed:
            raise ValueError("read of a closed stream")


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
        self._closed = threading.Event()
        self._streams: set[_Cancellable] = set()
        self._lock = threading.Lock()

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
        """Cancel what was not started, and end every stream handed out with CancelledError
        at its next read. Reads in flight are not waited for: a source that holds one (a
        stalled connection) must not hold the audit's end with it."""
        with self._lock:
            self._closed.set()
            streams, self._streams = self._streams, set()
        for stream in streams:
            stream.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def prefetch(self, paths: Iterator[str]) -> None:
        """Fetch `paths` ahead, in order, after those announced before."""
        self._check()
        self._reads.announce(paths)

    def prefetch_timestamps(self, sizes: Iterator[int]) -> None:
        """Fetch the timestamps of checkpoints `sizes` ahead, in order."""
        self._check()
        self._timestamps.announce(sizes)

    def read(self, path: str) -> bytes | None:
        self._check()
        return self._reads.get(path)

    def map_ahead(self, fn: Callable[[K], V], items: Iterable[K]) -> Iterator[V]:
        """`fn` of each item, in order, run ahead on the workers (a window of them at once):
        re-hashing sealed objects streams each, so only the window's buffers are held."""
        pending: deque[Future[V]] = deque()
        for item in items:
            self._check()
            pending.append(self._pool.submit(fn, item))
            if len(pending) >= self._window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]:
        self._check()
        return self._timestamps.get(size)

    def archived_sizes(self) -> list[int]:
        return self._source.archived_sizes()

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        return self._source.sealed_kinds

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        self._check()
        stream = self._source.open_sealed(kind, sha256)
        if stream is None:
            return None
        guarded = _Cancellable(stream, self._closed, self._forget_stream)
        with self._lock:
            if not self._closed.is_set():
                self._streams.add(guarded)
                return cast(BinaryIO, guarded)
        stream.close()  # closed while it was being opened
        raise CancelledError("the audit's read-ahead was closed")

    def _check(self) -> None:
        if self._closed.is_set():
            raise CancelledError("the audit's read-ahead was closed")

    def _forget_stream(self, stream: _Cancellable) -> None:
        with self._lock:
            self._streams.discard(stream)
