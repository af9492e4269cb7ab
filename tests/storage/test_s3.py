"""The S3 adapter against a real SeaweedFS: Object Lock, checksums, conditional writes."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from storage.base import LockVerificationError, ObjectExistsError, StorageError
from storage.s3 import S3Error, S3ObjectStore
from storage.s3_client import CONTINUE_THRESHOLD
from tests.servers import S3_REGION, S3Server
from tests.storage.support import (
    MIB,
    LockDroppingClient,
    broken,
    put_bytes,
    read_all,
    sha256_hex,
    trickle,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.s3

PREFIX = "p/"
LARGE = 12 * MIB  # three parts of 5 MiB (the last one 2 MiB)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def retention(seconds: int = 120) -> datetime:
    # Whole seconds: what the server stores, so comparisons below can be exact.
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)


def make_store(client: Any, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(
        cast("S3Client", client),
        bucket,
        prefix=PREFIX,
        part_size=5 * MIB,
        multipart_threshold=6 * MIB,
    )


@pytest.fixture
def bucket(s3_bucket_factory: Callable[..., str]) -> str:
    return s3_bucket_factory()


@pytest.fixture
def store(s3_client: S3Client, bucket: str) -> S3ObjectStore:
    return make_store(s3_client, bucket)


@pytest.mark.parametrize(("size", "parts"), [(100, None), (LARGE, 3)])
def test_lock_and_checksum_are_on_the_stored_version(
    store: S3ObjectStore, s3_client: S3Client, bucket: str, size: int, parts: int | None
) -> None:
    data = os.urandom(size)
    until = retention()

    store.put("evidence", trickle(data), sha256=sha256_hex(data), size=size, retain_until=until)

    head = s3_client.head_object(Bucket=bucket, Key=PREFIX + "evidence", ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == until
    if parts is None:
        assert head["ChecksumSHA256"] == b64_sha256(data)
    else:  # a multipart upload's checksum covers the part checksums: "<base64>-<parts>"
        assert head["ChecksumSHA256"].endswith(f"-{parts}")
        assert head["ETag"].endswith(f'-{parts}"')
    lock = store.lock_info("evidence")
    assert lock is not None
    assert (lock.mode, lock.retain_until) == ("COMPLIANCE", until)


def test_sub_second_retention_is_kept_to_the_second(store: S3ObjectStore) -> None:
    until = retention() + timedelta(microseconds=700_000)

    put_bytes(store, "evidence", b"bytes", retain_until=until)  # no LockVerificationError

    lock = store.lock_info("evidence")
    assert lock is not None
    assert lock.retain_until == until.replace(microsecond=0)  # SeaweedFS truncates


def test_locked_original_cannot_be_deleted(
    store: S3ObjectStore, s3_client: S3Client, bucket: str
) -> None:
    put_bytes(store, "evidence", b"original", retain_until=retention())
    version = s3_client.head_object(Bucket=bucket, Key=PREFIX + "evidence")["VersionId"]

    with pytest.raises(ClientError) as caught:
        s3_client.delete_object(Bucket=bucket, Key=PREFIX + "evidence", VersionId=version)

    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert read_all(store, "evidence") == b"original"


def test_locked_original_survives_overwrites(
    store: S3ObjectStore, s3_client: S3Client, bucket: str
) -> None:
    put_bytes(store, "evidence", b"original", retain_until=retention())
    version = s3_client.head_object(Bucket=bucket, Key=PREFIX + "evidence")["VersionId"]

    with pytest.raises(ObjectExistsError):
        put_bytes(store, "evidence", b"forgery")
    # Around the store, a plain PUT makes a new current version; the locked one stays.
    s3_client.put_object(Bucket=bucket, Key=PREFIX + "evidence", Body=b"forgery")

    assert read_all(store, "evidence") == b"forgery"
    kept = s3_client.get_object(Bucket=bucket, Key=PREFIX + "evidence", VersionId=version)
    assert kept["Body"].read() == b"original"


def test_repeated_write_puts_the_lock_on_the_existing_object(
    store: S3ObjectStore, s3_client: S3Client, bucket: str
) -> None:
    put_bytes(store, "evidence", b"original")
    until = retention()

    assert not put_bytes(store, "evidence", b"original", retain_until=until).created

    head = s3_client.head_object(Bucket=bucket, Key=PREFIX + "evidence")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)


@pytest.mark.parametrize("fail", ["source", "digest", "exists"])
def test_failed_multipart_upload_is_aborted(
    store: S3ObjectStore, s3_client: S3Client, bucket: str, fail: str
) -> None:
    data = b"x" * LARGE
    if fail == "exists":
        put_bytes(store, "big", b"y" * LARGE)
    source = broken(7 * MIB) if fail == "source" else io.BytesIO(data)
    digest = sha256_hex(b"" if fail == "digest" else data)

    with pytest.raises((ConnectionResetError, StorageError)):
        store.put("big", source, sha256=digest, size=LARGE)

    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert (store.stat("big") is not None) == (fail == "exists")


def test_list_strips_the_prefix_and_skips_foreign_names(
    store: S3ObjectStore, s3_client: S3Client, bucket: str
) -> None:
    put_bytes(store, "a/b", b"1")
    s3_client.put_object(Bucket=bucket, Key="outside", Body=b"2")
    s3_client.put_object(Bucket=bucket, Key=PREFIX + "has space", Body=b"3")

    assert list(store.list("")) == ["a/b"]


def test_seaweedfs_refuses_a_wrong_sha256_checksum(s3_client: S3Client, bucket: str) -> None:
    # The adapter relies on the server checking the checksum it sends with every write.
    with pytest.raises(ClientError) as caught:
        s3_client.put_object(
            Bucket=bucket,
            Key="corrupted",
            Body=b"bytes as sent",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64_sha256(b"bytes as meant"),
        )

    assert caught.value.response["Error"]["Code"] == "BadDigest"


def test_seaweedfs_honours_if_none_match_on_multipart_completion(
    store: S3ObjectStore, s3_client: S3Client, bucket: str
) -> None:
    # The adapter has no head_object pre-check: it relies on this conditional completion.
    put_bytes(store, "taken", b"first")
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key=PREFIX + "taken")
    part = s3_client.upload_part(
        Bucket=bucket, Key=PREFIX + "taken", UploadId=upload["UploadId"], PartNumber=1, Body=b"2nd"
    )

    with pytest.raises(ClientError) as caught:
        s3_client.complete_multipart_upload(
            Bucket=bucket,
            Key=PREFIX + "taken",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            IfNoneMatch="*",
        )

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3_client.abort_multipart_upload(
        Bucket=bucket, Key=PREFIX + "taken", UploadId=upload["UploadId"]
    )
    assert read_all(store, "taken") == b"first"


def test_ensure_bucket_is_idempotent(s3_client: S3Client) -> None:
    store = make_store(s3_client, f"test-{uuid.uuid4().hex[:24]}")

    store.ensure_bucket(object_lock=True)
    store.ensure_bucket(object_lock=True)

    put_bytes(store, "evidence", b"bytes", retain_until=retention(5))
    assert store.lock_info("evidence") is not None


def test_ensure_bucket_refuses_an_existing_bucket_without_lock(
    s3_client: S3Client, s3_bucket_factory: Callable[..., str]
) -> None:
    store = make_store(s3_client, s3_bucket_factory(object_lock=False))

    store.ensure_bucket(object_lock=False)
    with pytest.raises(StorageError, match="without Object Lock"):
        store.ensure_bucket(object_lock=True)


def test_from_settings_builds_a_working_store(s3_server: S3Server, bucket: str) -> None:
    store = S3ObjectStore.from_settings(
        s3_server.endpoint, S3_REGION, s3_server.access_key, s3_server.secret_key, bucket
    )

    put_bytes(store, "k", b"v")

    assert read_all(store, "k") == b"v"
    assert "secret" not in repr(store).lower()


def test_service_errors_become_storage_errors(s3_server: S3Server, s3_client: S3Client) -> None:
    missing_bucket = make_store(s3_client, f"test-missing-{uuid.uuid4().hex[:16]}")
    wrong_secret = S3ObjectStore.from_settings(
        s3_server.endpoint, S3_REGION, s3_server.access_key, "wrong", "any", max_attempts=1
    )

    # Reads: SeaweedFS creates a missing bucket on PutObject (hence ensure_bucket's check).
    with pytest.raises(S3Error) as caught:
        missing_bucket.open("k")
    assert caught.value.code == "NoSuchBucket"
    with pytest.raises(S3Error) as caught:
        list(wrong_secret.list(""))
    assert caught.value.status == 403


def test_connection_failures_become_storage_errors() -> None:
    with socket.socket() as closed:  # a loopback port with nothing listening
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = S3ObjectStore.from_settings(
        f"http://127.0.0.1:{port}", S3_REGION, "AK", "SK", "bucket", max_attempts=1
    )

    with pytest.raises(StorageError, match="S3 request for 'k' failed"):
        store.stat("k")


@pytest.mark.parametrize("size", [100, LARGE])
def test_lock_the_server_does_not_keep_is_an_error(
    s3_client: S3Client, bucket: str, size: int
) -> None:
    fake = LockDroppingClient(s3_client, keep_single=False, retention_works=False)
    store = make_store(fake, bucket)
    data = os.urandom(size)

    with pytest.raises(LockVerificationError) as caught:
        store.put(
            "evidence", trickle(data), sha256=sha256_hex(data), size=size, retain_until=retention()
        )

    assert caught.value.key == "evidence"
    assert "even after put_object_retention" in caught.value.detail


def test_lock_dropped_on_multipart_is_applied_afterwards(s3_client: S3Client, bucket: str) -> None:
    store = make_store(
        LockDroppingClient(s3_client, keep_single=True, retention_works=True), bucket
    )
    data = os.urandom(LARGE)
    until = retention()

    store.put("evidence", trickle(data), sha256=sha256_hex(data), size=LARGE, retain_until=until)

    head = s3_client.head_object(Bucket=bucket, Key=PREFIX + "evidence")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)


def test_small_bodies_go_without_waiting_for_100_continue(
    s3_client: S3Client, store: S3ObjectStore
) -> None:
    """A round trip saved per small object; a large one still asks first, then sends."""
    sent: list[tuple[str, str | None]] = []

    def record(request: Any, **_: Any) -> None:
        expect = request.headers.get("Expect")
        sent.append((request.method, expect.decode() if isinstance(expect, bytes) else expect))

    s3_client.meta.events.register("before-send.s3", record)
    try:
        small = os.urandom(CONTINUE_THRESHOLD - 1)
        put_bytes(store, "originals/small", small, retain_until=retention())
        large = os.urandom(CONTINUE_THRESHOLD)
        put_bytes(store, "originals/large", large, retain_until=retention())
    finally:
        s3_client.meta.events.unregister("before-send.s3", record)
    assert [expect for method, expect in sent if method == "PUT"] == [None, "100-continue"]
    assert read_all(store, "originals/small") == small
