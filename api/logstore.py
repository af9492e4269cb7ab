"""The custody log as stored: tlog-tiles objects under the log prefix, read with a cache."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from datetime import datetime

from custody.tiles import Bundle, Tile, bundle_path, tile_path
from storage import ObjectNotFoundError, ObjectStore

CACHE_OBJECTS = 4096  # tiles are at most 8 KiB: a 32 MiB cache keeps every hot right edge
CHECKPOINT = "checkpoint"


def checkpoint_key(size: int) -> str:
    """The immutable archive of the checkpoint for `size` (relative to the log prefix)."""
    return f"checkpoints/{size}"


class LogStore:
    """Reads and writes log objects under `prefix`; every tile path has fixed content, so
    reads are cached by path (a partial tile's path names its width)."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: str) -> bytes:
        """The object at `path` under the prefix; `ObjectNotFoundError` if absent."""
        with self._lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        with self.store.open(self.prefix + path) as stream:
            data = stream.read()
        self._remember(path, data)
        return data

    def _remember(self, path: str, data: bytes) -> None:
        if path == CHECKPOINT:
            return  # the one object whose content changes under the same path
        with self._lock:
            self._cache[path] = data
            while len(self._cache) > CACHE_OBJECTS:
                self._cache.popitem(last=False)

    def read_optional(self, path: str) -> bytes | None:
        try:
            return self.read(path)
        except ObjectNotFoundError:
            return None

    def read_tile(self, tile: Tile) -> bytes:
        return self.read(tile_path(tile))

    def read_bundle(self, bundle: Bundle) -> bytes:
        return self.read(bundle_path(bundle))

    def write(self, path: str, data: bytes, *, retain_until: datetime | None) -> None:
        """Create-only, locked until `retain_until` where the store locks (full objects)."""
        self.store.put(
            self.prefix + path,
            io.BytesIO(data),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            retain_until=retain_until,
        )
        # Receipts in this process then need no read of what the integrator just wrote.
        self._remember(path, data)

    def write_mutable(self, path: str, data: bytes) -> None:
        """Overwrite (partial tiles, the latest checkpoint): never locked."""
        self.store.put(
            self.prefix + path,
            io.BytesIO(data),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            mutable=True,
        )
        self._remember(path, data)

    def archived_sizes(self) -> list[int]:
        """Sizes of every archived checkpoint, ascending."""
        sizes = []
        for key in self.store.list(self.prefix + "checkpoints/"):
            name = key.rsplit("/", 1)[-1]
            if name.isdigit() and str(int(name)) == name:
                sizes.append(int(name))
        return sorted(sizes)
