"""In-memory object store for tests, with the same create-only, digest and lock semantics."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from storage.base import (
    LockInfo,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    PutResult,
    check_key,
    check_prefix,
)
from storage.streams import StreamDigest, check_put_args, iter_chunks


@dataclass(frozen=True, slots=True)
class _Stored:
    data: bytes
    lock: LockInfo | None


class MemoryObjectStore:
    """Objects in a dict; locks are recorded and reported, as a locking store would."""

    def __init__(self) -> None:
        self._objects: dict[str, _Stored] = {}
        # Check-and-set of a create-only write must be atomic across threads, as on S3.
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryObjectStore(<{len(self._objects)} objects>)"

    @property
    def supports_lock(self) -> bool:
        return True

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
        check_key(key)
        check_put_args(retain_until, mutable=mutable)
        digest = StreamDigest()
        buffer = io.BytesIO()
        for chunk in iter_chunks(source):
            digest.update(chunk)
            buffer.write(chunk)
        digest.verify(key, sha256=sha256, size=size)
        lock = None if retain_until is None else LockInfo("COMPLIANCE", retain_until)
        stored = _Stored(buffer.getvalue(), lock)
        with self._mutex:
            existing = self._objects.get(key)
            if mutable or existing is None:
                self._objects[key] = stored
                return PutResult(key, created=True)
            if existing.data != stored.data:
                raise ObjectExistsError(key)
            if lock is not None and (
                existing.lock is None or existing.lock.retain_until < lock.retain_until
            ):
                # Like the S3 store, a repeated write makes sure the lock asked for is in place;
                # retention can only be extended, never shortened.
                self._objects[key] = stored
            return PutResult(key, created=False)

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key).data)

    def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        stored = self._objects.get(key)
        return None if stored is None else ObjectInfo(key, len(stored.data))

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        with self._mutex:
            keys = sorted(key for key in self._objects if key.startswith(prefix))
        yield from keys

    def lock_info(self, key: str) -> LockInfo | None:
        return self._get(key).lock

    def _get(self, key: str) -> _Stored:
        check_key(key)
        stored = self._objects.get(key)
        if stored is None:
            raise ObjectNotFoundError(key)
        return stored
