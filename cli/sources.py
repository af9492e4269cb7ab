"""Where an auditor reads a log from: a local store directory, S3, or the service over HTTP."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Generic, Protocol, TypeVar, cast

from custody.audit import COPY, ORIGINAL, SEALED_KINDS, SIDECAR, NotVisibleError
from storage import ObjectNotFoundError, ObjectStore
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore

# Where the service seals what the log names, by content address (see api.evidence,
# api.sidecar, api.copies): <prefix>/<first two hex digits>/<sha256>.
SEALED_PREFIXES = {
    ORIGINAL: "originals/sha256",
    SIDECAR: "metadata/sha256",
    COPY: "copies/sha256",
}
HTTP_TIMEOUT = 60
MAX_PROBED_SLOTS = 16  # TSAs per checkpoint an HTTP source looks for without a listing
# Reads in flight for a remote source: each waits a round trip, so a few at once keep the
# auditor's link busy; the window bounds what is held unread (bundles are at most a few MB).
READ_AHEAD_WORKERS = 8
READ_AHEAD_WINDOW = 32
K = TypeVar("K")
V = TypeVar("V")


class StoreSource:
    """A log in an object store (local directory or S3), under `log_prefix`."""

    def __init__(self, store: ObjectStore, log_prefix: str = "log/") -> None:
        self._store = store
        self._prefix = log_prefix
        self._tokens: dict[int, list[str]] | None = None
        self._listing = threading.Lock()
        self.remote = isinstance(store, S3ObjectStore)  # each read a round trip away

    def read(self, path: str) -> bytes | None:
        try:
            with self._store.open(self._prefix + path) as stream:
                return stream.read()
        except ObjectNotFoundError:
            return None

    def archived_sizes(self) -> list[int]:
        names = (k.rsplit("/", 1)[-1] for k in self._store.list(self._prefix + "checkpoints/"))
        return sorted(int(n) for n in names if _is_number(n))

    def timestamps(self, size: int) -> list[tuple[str, bytes]]:
        """The stored replies `checkpoints/<size>.tsr.<slot>` (listed once for all sizes)."""
        with self._listing:  # read ahead, several sizes may ask first at once
            if self._tokens is None:
                tokens: dict[int, list[str]] = {}
                for key in self._store.list(self._prefix + "checkpoints/"):
                    name, dot, slot = key.rsplit("/", 1)[-1].partition(".tsr.")
                    if dot and _is_number(name) and _is_number(slot):
                        tokens.setdefault(int(name), []).append(key)
                self._tokens = tokens
        found = []
        for key in sorted(self._tokens.get(size, [])):
            data = self.read(key.removeprefix(self._prefix))
            if data is not None:
                found.append((key, data))
        return found

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        return SEALED_KINDS

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        try:
            return self._store.open(f"{SEALED_PREFIXES[kind]}/{sha256[:2]}/{sha256}")
        except ObjectNotFoundError:
            return None


class HttpSource:
    """A log read from the service: raw tlog-tiles paths under /log/, and with a token the
    archived checkpoints and originals through /v1."""

    remote = True

    def __init__(self, base_url: str, token: str | None) -> None:
        self._base = base_url.rstrip("/")
        self._token = token

    def read(self, path: str) -> bytes | None:
        # Tiles and bundles need the auditor role unless the operator made them public.
        return self._get(f"/log/{path}", auth=True)

    def archived_sizes(self) -> list[int]:
        data = self._get("/v1/log/checkpoints", auth=True) if self._token else None
        return sorted(int(n) for n in json.loads(data)["sizes"]) if data else []

    def timestamps(self, size: int) -> list[tuple[str, bytes]]:
        """With a token, the tokens the service lists; without, the raw replies by slot."""
        if self._token:
            data = self._get(f"/v1/log/checkpoints/{size}/timestamps", auth=True)
            listed = json.loads(data) if data else []
            return [
                (f"checkpoints/{size} ({item['tsa']})", base64.b64decode(item["token"]))
                for item in listed
            ]
        found = []
        for slot in range(MAX_PROBED_SLOTS):
            reply = self.read(f"checkpoints/{size}.tsr.{slot}")
            if reply is None:
                break
            found.append((f"checkpoints/{size}.tsr.{slot}", reply))
        return found

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        """Originals and copies, through the API with a token of a member who may read them;
        the API serves a sidecar's values, not its sealed bytes, so those cannot be re-hashed."""
        return (ORIGINAL, COPY) if self._token else ()

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        """The object's bytes as the service serves them. The service answers 404 alike for
        what is not there and for what this token may not see (and 403 to roles that read no
        evidence), so neither is a failure here: auditing the store itself settles it."""
        path = {ORIGINAL: f"/v1/evidence/{sha256}/content", COPY: f"/v1/copies/{sha256}/content"}
        try:
            stream = self._open(path[kind], auth=True, forbidden_ok=True)
        except PermissionError as exc:
            raise NotVisibleError(str(exc)) from exc
        if stream is None:
            raise NotVisibleError(f"{kind} {sha256}: not found, or not visible to this token")
        return stream  # streamed: an original may be larger than memory

    def _get(self, path: str, *, auth: bool, forbidden_ok: bool = False) -> bytes | None:
        stream = self._open(path, auth=auth, forbidden_ok=forbidden_ok)
        if stream is None:
            return None
        with stream:
            return bytes(stream.read())

    def _open(self, path: str, *, auth: bool, forbidden_ok: bool = False) -> BinaryIO | None:
        request = urllib.request.Request(self._base + path)  # noqa: S310 - scheme checked in open_source
        if auth and self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            response = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)  # noqa: S310
            return cast(BinaryIO, response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 403 and forbidden_ok:
                raise PermissionError(f"{path}: HTTP 403") from exc
            if exc.code in (401, 403):
                raise ValueError(
                    f"{self._base}{path} answered HTTP {exc.code}: the log's tiles and entries "
                    "need an auditor's token (--token or CUSTODY_TOKEN) unless the operator "
                    "made them public"
                ) from exc
            raise


class AuditSource(Protocol):
    """What `custody audit` reads a log through (StoreSource, HttpSource, ReadAhead)."""

    remote: bool  # each read a round trip away: worth reading ahead

    def read(self, path: str) -> bytes | None: ...

    def archived_sizes(self) -> list[int]: ...

    def timestamps(self, size: int) -> list[tuple[str, bytes]]: ...

    @property
    def sealed_kinds(self) -> tuple[str, ...]: ...

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None: ...


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


def _is_number(text: str) -> bool:
    return text.isdigit() and str(int(text)) == text


def open_source(
    source: str, *, log_prefix: str, endpoint_url: str | None, region: str, token: str | None
) -> StoreSource | HttpSource:
    """The source a SOURCE argument names (directory, s3://bucket/prefix, http(s)://...)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        return HttpSource(source, token)
    if parsed.scheme == "s3":
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        store = S3ObjectStore.from_settings(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=None,
            secret_access_key=None,
            bucket=parsed.netloc,
            prefix=prefix,
        )
        return StoreSource(store, log_prefix)
    if parsed.scheme:
        raise ValueError(f"unsupported source {source!r}: use a directory, s3:// or http(s)://")
    root = Path(source)
    if not root.is_dir():
        raise ValueError(f"{source} is not a directory (the root of a local object store)")
    return StoreSource(LocalObjectStore(root), log_prefix)
