"""Object storage: one small port and its adapters (local directory, S3, in memory)."""

from storage.base import (
    InvalidKeyError,
    LockInfo,
    LockVerificationError,
    ObjectDigestError,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    PutResult,
    StorageError,
)

__all__ = [
    "InvalidKeyError",
    "LockInfo",
    "LockVerificationError",
    "ObjectDigestError",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "PutResult",
    "StorageError",
]
