"""Object store on S3 (boto3): create-only conditional writes, SHA-256 checksums, Object Lock.

Besides the port's errors, any other failure the service reports is an `S3Error`
(a `StorageError` carrying the S3 error code and HTTP status).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from storage.base import (
    LockInfo,
    LockVerificationError,
    ObjectInfo,
    ObjectNotFoundError,
    PutResult,
    StorageError,
    check_key,
    check_prefix,
)
from storage.s3_client import BodyReader, S3Error, create_client, s3_errors
from storage.s3_upload import Uploader
from storage.streams import CHUNK_SIZE, check_put_args

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Error", "S3ObjectStore", "create_client"]

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3: every part but the last must be at least 5 MiB
DEFAULT_PART_SIZE = 64 * MIB


class S3ObjectStore:
    """Objects under `prefix` in one bucket; create-only writes are locked when asked."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        lock_mode: LockMode = "COMPLIANCE",
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        if multipart_threshold < 1:
            raise ValueError("multipart_threshold must be positive")
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._lock_mode: LockMode = lock_mode
        self._uploader = Uploader(client, bucket, part_size, multipart_threshold)

    @classmethod
    def from_settings(
        cls,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        bucket: str,
        *,
        prefix: str = "",
        lock_mode: LockMode = "COMPLIANCE",
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int = DEFAULT_PART_SIZE,
        max_attempts: int = 5,
    ) -> S3ObjectStore:
        """A store with its own client (path-style addressing, standard retries)."""
        client = create_client(
            endpoint_url, region, access_key_id, secret_access_key, max_attempts=max_attempts
        )
        return cls(
            client,
            bucket,
            prefix=prefix,
            lock_mode=lock_mode,
            part_size=part_size,
            multipart_threshold=multipart_threshold,
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self._bucket!r}, prefix={self._prefix!r})"

    @property
    def supports_lock(self) -> bool:
        return True

    def ensure_bucket(self, *, object_lock: bool) -> None:
        """Create the bucket (with Object Lock if asked); an existing bucket of ours is fine."""
        region = self._client.meta.region_name
        where: dict[str, Any] = {}
        if region and region != "us-east-1":  # AWS refuses us-east-1 as a location constraint
            where["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with s3_errors():
                self._client.create_bucket(
                    Bucket=self._bucket, ObjectLockEnabledForBucket=object_lock, **where
                )
        except S3Error as error:
            # SeaweedFS 4.48 answers BucketAlreadyExists for our own lock-less bucket when the
            # lock flag is set; head_bucket tells ours (200) from someone else's (403).
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            with s3_errors():
                self._client.head_bucket(Bucket=self._bucket)
        if object_lock and not self._bucket_has_lock():
            raise StorageError(
                f"bucket {self._bucket!r} exists without Object Lock, which can only be enabled"
                " when a bucket is created: use a new bucket"
            )

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
        lock: dict[str, Any] = {}
        if retain_until is not None:
            lock = {"ObjectLockMode": self._lock_mode, "ObjectLockRetainUntilDate": retain_until}
        written = self._uploader.write(
            key, self._prefix + key, source, sha256=sha256, size=size, lock=lock, mutable=mutable
        )
        if retain_until is not None:
            # Also after a no-op: the identical object found must carry the lock asked for.
            self._verify_lock(key, written.version_id, retain_until)
        return PutResult(key, created=written.created)

    def open(self, key: str) -> BinaryIO:
        with s3_errors(check_key(key)):
            body = self._client.get_object(Bucket=self._bucket, Key=self._prefix + key)["Body"]
        return io.BufferedReader(BodyReader(body, key), buffer_size=CHUNK_SIZE)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with s3_errors(check_key(key)):
                head = self._client.head_object(Bucket=self._bucket, Key=self._prefix + key)
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, head["ContentLength"])

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        with s3_errors():
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
                keys.extend(item["Key"][len(self._prefix) :] for item in page.get("Contents", []))
        # Objects written around this store under names no key can have are not ours to show.
        yield from sorted(key for key in keys if _is_key(key))

    def lock_info(self, key: str) -> LockInfo | None:
        with s3_errors(check_key(key)):
            head = self._client.head_object(Bucket=self._bucket, Key=self._prefix + key)
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        return None if mode is None or until is None else LockInfo(mode, until)

    def _verify_lock(self, key: str, version_id: str | None, until: datetime) -> None:
        """Read the lock back and apply it once more if missing.

        Some servers (Ceph RGW 16) drop lock headers on multipart uploads without an error.
        """
        if version_id is None:
            raise LockVerificationError(key, "no version id: is Object Lock enabled on the bucket?")
        problem = self._lock_problem(key, version_id, until)
        if problem is None:
            return
        try:
            with s3_errors(key):
                self._client.put_object_retention(
                    Bucket=self._bucket,
                    Key=self._prefix + key,
                    VersionId=version_id,
                    Retention={"Mode": self._lock_mode, "RetainUntilDate": until},
                )
        except StorageError as error:
            raise LockVerificationError(key, f"{problem}; setting it failed: {error}") from error
        problem = self._lock_problem(key, version_id, until)
        if problem is not None:
            raise LockVerificationError(key, f"{problem}, even after put_object_retention")

    def _lock_problem(self, key: str, version_id: str, until: datetime) -> str | None:
        with s3_errors(key):
            head = self._client.head_object(
                Bucket=self._bucket, Key=self._prefix + key, VersionId=version_id
            )
        mode = head.get("ObjectLockMode")
        kept = head.get("ObjectLockRetainUntilDate")
        expected = f"expected {self._lock_mode} until {until.isoformat()}"
        if mode != self._lock_mode or kept is None:
            return f"version {version_id} has lock {mode} until {kept}, {expected}"
        # Servers keep whole seconds (SeaweedFS truncates), so compare at that precision.
        if kept < until.replace(microsecond=0):
            return f"version {version_id} is retained until {kept.isoformat()}, {expected}"
        return None

    def _bucket_has_lock(self) -> bool:
        try:
            with s3_errors():
                response = self._client.get_object_lock_configuration(Bucket=self._bucket)
        except S3Error as error:
            if error.code == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return response.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except StorageError:
        return False
    return True
