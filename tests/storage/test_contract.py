"""The object-store contract, run against every adapter (S3 through a real SeaweedFS)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage.base import (
    InvalidKeyError,
    ObjectDigestError,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
)
from storage.local import LocalObjectStore
from storage.memory import MemoryObjectStore
from storage.s3 import S3ObjectStore
from tests.storage.support import MIB, broken, put_bytes, read_all, sha256_hex, trickle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 runs with 5 MiB parts above 6 MiB, so that LARGE goes through a 3-part upload.
S3_PART_SIZE = 5 * MIB
S3_THRESHOLD = 6 * MIB
LARGE = 12 * MIB
SMALL = 10

INVALID_KEYS = ["../x", "/abs", "a//b", "a/./b", "", "a\\b", "a\x00b", "a/", "..", "a/../b", "a b"]


@pytest.fixture(params=["memory", "local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return MemoryObjectStore()
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    # Asked for here only, so that the memory and local runs never start SeaweedFS.
    client: S3Client = request.getfixturevalue("s3_client")
    bucket_factory: Callable[..., str] = request.getfixturevalue("s3_bucket_factory")
    return S3ObjectStore(
        client,
        bucket_factory(),
        prefix="store/",
        part_size=S3_PART_SIZE,
        multipart_threshold=S3_THRESHOLD,
    )


def assert_absent(store: ObjectStore, key: str) -> None:
    assert store.stat(key) is None
    assert list(store.list("")) == []
    with pytest.raises(ObjectNotFoundError):
        store.open(key)


def test_round_trip_is_byte_identical(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40

    result = put_bytes(store, "objects/sha256/ab/cd/abcd", data)

    assert (result.key, result.created) == ("objects/sha256/ab/cd/abcd", True)
    with store.open("objects/sha256/ab/cd/abcd") as stream:
        assert stream.read(3) == data[:3]  # read(n) works: readers stream in pieces
        assert stream.read() == data[3:]
    assert store.stat("objects/sha256/ab/cd/abcd") == ObjectInfo(
        "objects/sha256/ab/cd/abcd", len(data)
    )


def test_zero_length_object(store: ObjectStore) -> None:
    assert put_bytes(store, "empty", b"").created

    assert read_all(store, "empty") == b""
    assert store.stat("empty") == ObjectInfo("empty", 0)
    assert not put_bytes(store, "empty", b"").created


def test_same_bytes_again_is_a_no_op(store: ObjectStore) -> None:
    put_bytes(store, "log/tile/0/000", b"tile bytes")

    again = put_bytes(store, "log/tile/0/000", b"tile bytes")

    assert not again.created
    assert read_all(store, "log/tile/0/000") == b"tile bytes"


@pytest.mark.parametrize("other", [b"tile bytez", b"longer tile bytes", b""])
def test_different_bytes_are_refused_and_the_original_kept(
    store: ObjectStore, other: bytes
) -> None:
    put_bytes(store, "log/tile/0/000", b"tile bytes")

    with pytest.raises(ObjectExistsError) as caught:
        put_bytes(store, "log/tile/0/000", other)

    assert caught.value.key == "log/tile/0/000"
    assert read_all(store, "log/tile/0/000") == b"tile bytes"


@pytest.mark.parametrize("size", [SMALL, 7 * MIB])
def test_digest_mismatch_stores_nothing(store: ObjectStore, size: int) -> None:
    data = os.urandom(size)
    wrong = sha256_hex(b"something else")

    with pytest.raises(ObjectDigestError) as caught:
        store.put("evidence", io.BytesIO(data), sha256=wrong, size=size)

    assert (caught.value.expected, caught.value.actual) == (wrong, sha256_hex(data))
    assert_absent(store, "evidence")


@pytest.mark.parametrize("declared", [SMALL - 1, SMALL + 1, 7 * MIB])
def test_wrong_declared_size_stores_nothing(store: ObjectStore, declared: int) -> None:
    data = b"x" * SMALL

    with pytest.raises(ObjectDigestError):
        store.put("evidence", io.BytesIO(data), sha256=sha256_hex(data), size=declared)

    assert_absent(store, "evidence")


@pytest.mark.parametrize("fail_after", [SMALL, 7 * MIB])
def test_source_failing_midway_leaves_nothing(store: ObjectStore, fail_after: int) -> None:
    with pytest.raises(ConnectionResetError, match="client went away"):
        store.put("evidence", broken(fail_after), sha256=sha256_hex(b""), size=8 * MIB)

    assert_absent(store, "evidence")


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_everywhere(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        put_bytes(store, key, b"data")
    with pytest.raises(InvalidKeyError):
        store.open(key)
    with pytest.raises(InvalidKeyError):
        store.stat(key)
    with pytest.raises(InvalidKeyError):
        store.lock_info(key)
    assert list(store.list("")) == []


@pytest.mark.parametrize("prefix", ["../", "/a", "a//", "a/../", "a b", "a\\"])
def test_invalid_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        list(store.list(prefix))


def test_missing_objects(store: ObjectStore) -> None:
    assert store.stat("nothing/here") is None
    with pytest.raises(ObjectNotFoundError):
        store.open("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        store.lock_info("nothing/here")


def test_list_is_lexicographic_and_filters_by_prefix(store: ObjectStore) -> None:
    keys = [
        "log/tile/1/000",
        "log/tile/0/001",
        "log/tile.y",
        "log/tile/0/000",
        "log/tile-x",
        "log/checkpoint",
        "objects/sha256/ab/abcd",
        "log/tile/0/x001/234.p/5",
    ]
    for key in keys:
        put_bytes(store, key, key.encode())

    assert list(store.list("")) == sorted(keys)
    assert list(store.list("log/tile")) == [
        "log/tile-x",
        "log/tile.y",
        "log/tile/0/000",
        "log/tile/0/001",
        "log/tile/0/x001/234.p/5",
        "log/tile/1/000",
    ]
    assert list(store.list("log/tile/0/")) == [
        "log/tile/0/000",
        "log/tile/0/001",
        "log/tile/0/x001/234.p/5",
    ]
    assert list(store.list("log/tile/0/x")) == ["log/tile/0/x001/234.p/5"]
    assert list(store.list("nothing/")) == []
    assert list(store.list("log/checkpoint")) == ["log/checkpoint"]


def test_mutable_objects_are_overwritten(store: ObjectStore) -> None:
    assert put_bytes(store, "log/checkpoint", b"size 1", mutable=True).created
    assert put_bytes(store, "log/checkpoint", b"size 22", mutable=True).created

    assert read_all(store, "log/checkpoint") == b"size 22"
    assert store.stat("log/checkpoint") == ObjectInfo("log/checkpoint", 7)
    assert store.lock_info("log/checkpoint") is None


def test_large_object_streams_through_in_parts(store: ObjectStore) -> None:
    data = os.urandom(LARGE)

    result = store.put("big", trickle(data), sha256=sha256_hex(data), size=LARGE)

    assert result.created
    assert read_all(store, "big") == data
    assert not store.put("big", trickle(data), sha256=sha256_hex(data), size=LARGE).created
    other = data[:-1] + b"!"
    with pytest.raises(ObjectExistsError):
        store.put("big", trickle(other), sha256=sha256_hex(other), size=LARGE)
    assert read_all(store, "big") == data


def test_retention_lock_is_kept_where_supported(store: ObjectStore) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)

    put_bytes(store, "locked", b"evidence", retain_until=until)

    lock = store.lock_info("locked")
    if not store.supports_lock:
        assert lock is None
        return
    assert lock is not None
    assert lock.mode == "COMPLIANCE"
    assert lock.retain_until == until


def test_objects_without_retention_have_no_lock(store: ObjectStore) -> None:
    put_bytes(store, "plain", b"bytes")

    assert store.lock_info("plain") is None


@pytest.mark.parametrize(
    ("retain_until", "mutable"),
    [
        (datetime(2099, 1, 1), False),  # naive: whose midnight?
        (datetime(2099, 1, 1, tzinfo=UTC), True),  # a lock on an object meant to change
    ],
)
def test_contradictory_arguments_are_programming_errors(
    store: ObjectStore, retain_until: datetime, mutable: bool
) -> None:
    with pytest.raises(ValueError, match="retain_until"):
        put_bytes(store, "x", b"x", retain_until=retain_until, mutable=mutable)
    assert store.stat("x") is None
