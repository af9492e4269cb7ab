"""The object-store port: create-only, digest-checked writes and streaming reads.

Exception tree (every adapter raises only these; vendor errors never escape)::

    StorageError
    ├── InvalidKeyError          key is empty, absolute, or escapes the store
    ├── ObjectNotFoundError      no object under that key
    ├── ObjectExistsError        create-only write met different bytes under that key
    ├── ObjectDigestError        the bytes written do not have the expected SHA-256
    └── LockVerificationError    the store did not keep the retention asked for
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

# Keys are relative, slash-separated paths of safe segments (C2SP tlog-tiles paths such as
# "log/tile/0/x001/234.p/5" and content addresses such as "objects/sha256/ab/cd/abcd...").
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_KEY_LENGTH = 1024  # S3 limit on key length, in bytes


class StorageError(Exception):
    """Base of every error an object store raises."""


class InvalidKeyError(StorageError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid object key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class ObjectNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object under key {key!r}")
        self.key = key


class ObjectExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"an object with different content already exists under {key!r}")
        self.key = key


class ObjectDigestError(StorageError):
    def __init__(self, key: str, expected: str, actual: str) -> None:
        super().__init__(f"bytes for {key!r} have SHA-256 {actual}, expected {expected}")
        self.key = key
        self.expected = expected
        self.actual = actual


class LockVerificationError(StorageError):
    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"retention lock on {key!r} not in place: {detail}")
        self.key = key
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PutResult:
    key: str
    created: bool  # False when identical bytes were already stored (create-only no-op)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class LockInfo:
    mode: str  # "COMPLIANCE" or "GOVERNANCE"
    retain_until: datetime


@runtime_checkable
class ObjectStore(Protocol):
    """What the service needs of an object store.

    `put` is create-only unless `mutable=True`: writing an existing key with the same bytes
    is a no-op (`created=False`), with other bytes an `ObjectExistsError`. The bytes are
    streamed from `source` (any size, flat memory) and checked against `sha256` (lowercase
    hex) before the object becomes visible. `retain_until` asks for a COMPLIANCE lock until
    that (timezone-aware) time where the store supports locks; a store that supports them
    verifies the lock after writing and raises `LockVerificationError` if it is missing.
    """

    def put(
        self,
        key: str,
        source: BinaryIO,
        *,
        sha256: str,
        size: int,
        retain_until: datetime | None = None,
        mutable: bool = False,
    ) -> PutResult: ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; the caller closes it."""
        ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, in lexicographic order."""
        ...

    def lock_info(self, key: str) -> LockInfo | None:
        """The retention lock on the object, or None where there is none (or no support)."""
        ...

    @property
    def supports_lock(self) -> bool: ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise `InvalidKeyError`."""
    if not key:
        raise InvalidKeyError(key, "empty")
    if len(key.encode()) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key, f"longer than {MAX_KEY_LENGTH} bytes")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(key, "empty, '.' or '..' segment")
        if not _SEGMENT.match(segment):
            raise InvalidKeyError(key, "segments may hold only letters, digits, '.', '_', '-'")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` if keys can start with it (`""` selects every key), else raise."""
    head, slash, tail = prefix.rpartition("/")
    try:
        if slash:
            check_key(head)
        # The last segment may be partial ("tile/0/x0" selects "tile/0/x001/..."), so only
        # its characters are checked.
        if tail and not _SEGMENT.match(tail):
            raise InvalidKeyError(tail, "segments may hold only letters, digits, '.', '_', '-'")
    except InvalidKeyError as error:
        raise InvalidKeyError(prefix, f"not a key prefix: {error.reason}") from None
    return prefix
