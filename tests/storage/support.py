"""Factories and stream doubles shared by the storage tests."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from storage.base import ObjectStore, PutResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_bytes(
    store: ObjectStore,
    key: str,
    data: bytes,
    *,
    retain_until: datetime | None = None,
    mutable: bool = False,
) -> PutResult:
    """Put `data` with its true digest and size."""
    return store.put(
        key,
        io.BytesIO(data),
        sha256=sha256_hex(data),
        size=len(data),
        retain_until=retain_until,
        mutable=mutable,
    )


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


class TrickleSource(io.RawIOBase):
    """Returns at most `step` bytes per read, as a network stream does."""

    def __init__(self, data: bytes, step: int = 64 * 1024) -> None:
        self._data = memoryview(data)
        self._step = step
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._step, len(self._data) - self._offset)
        view[:count] = self._data[self._offset : self._offset + count]
        self._offset += count
        return count


class BrokenSource(io.RawIOBase):
    """Yields `fail_after` bytes, then fails as a dropped client connection would."""

    def __init__(self, fail_after: int) -> None:
        self._left = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            raise ConnectionResetError("client went away")
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._left)
        view[:count] = b"x" * count
        self._left -= count
        return count


def trickle(data: bytes, step: int = 64 * 1024) -> BinaryIO:
    return cast(BinaryIO, TrickleSource(data, step))


def broken(fail_after: int) -> BinaryIO:
    return cast(BinaryIO, BrokenSource(fail_after))


class LockDroppingClient:
    """A real client that loses Object Lock request parameters, as some servers do silently.

    `keep_single` keeps them on PutObject (Ceph RGW drops them on multipart uploads only);
    `retention_works` lets put_object_retention through instead of ignoring it.
    """

    def __init__(self, client: S3Client, *, keep_single: bool, retention_works: bool) -> None:
        self._client = client
        self._keep_single = keep_single
        self._retention_works = retention_works

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> Any:
        return self._client.put_object(**(kwargs if self._keep_single else _unlocked(kwargs)))

    def create_multipart_upload(self, **kwargs: Any) -> Any:
        return self._client.create_multipart_upload(**_unlocked(kwargs))

    def put_object_retention(self, **kwargs: Any) -> Any:
        return self._client.put_object_retention(**kwargs) if self._retention_works else {}


def _unlocked(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in kwargs.items() if not name.startswith("ObjectLock")}
