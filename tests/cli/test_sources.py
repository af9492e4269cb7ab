"""cli.sources: the store source's listings; which source a SOURCE argument names."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from cli.sources import StoreSource
from custody.audit import ORIGINAL
from custody.errors import UnreadableObjectError
from storage import ObjectStore, StorageError
from storage.local import LocalObjectStore
from storage.memory import MemoryObjectStore


class SlowListing(MemoryObjectStore):
    """A store whose listings take a while per key, as over S3."""

    def list(self, prefix: str) -> Iterator[str]:
        for key in super().list(prefix):
            threading.Event().wait(0.01)
            yield key


def test_a_store_source_lists_timestamps_once_even_when_asked_at_once() -> None:
    store = SlowListing()
    for size in (1, 2, 3):
        for name in (f"checkpoints/{size}", f"checkpoints/{size}.tsr.0"):
            data = name.encode()
            store.put(
                "log/" + name,
                io.BytesIO(data),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
    source = StoreSource(store)
    found: dict[int, list[tuple[str, bytes]]] = {}
    threads = [
        threading.Thread(target=lambda n=n: found.setdefault(n, source.timestamps(n)))
        for n in (1, 2, 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in (1, 2, 3):
        assert found[n] == [(f"log/checkpoints/{n}.tsr.0", f"checkpoints/{n}.tsr.0".encode())]


# --- objects the store holds but cannot read -----------------------------------------------


def local_log(root: Path) -> StoreSource:
    store = LocalObjectStore(root)
    for key in ("log/tile/0/000", "log/checkpoints/5", "log/checkpoints/5.tsr.0"):
        put(store, key, key.encode())
    put(store, f"originals/sha256/{SHA[:2]}/{SHA}", b"original")
    return StoreSource(store)


def put(store: ObjectStore, key: str, data: bytes) -> None:
    store.put(key, io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest(), size=len(data))


SHA = hashlib.sha256(b"original").hexdigest()


def symlink_in_place(path: Path) -> None:
    target = path.with_name(path.name + "-elsewhere")
    path.rename(target)
    path.symlink_to(target)


def test_a_symlinked_object_is_unreadable_not_missing(tmp_path: Path) -> None:
    source = local_log(tmp_path)
    symlink_in_place(tmp_path / "log/tile/0/000")
    symlink_in_place(tmp_path / f"originals/sha256/{SHA[:2]}/{SHA}")

    with pytest.raises(UnreadableObjectError) as tile:
        source.read("tile/0/000")
    assert tile.value.key == "tile/0/000"
    assert tile.value.expected == "a regular file"
    assert "symbolic link" in tile.value.found
    with pytest.raises(UnreadableObjectError) as original:
        source.open_sealed(ORIGINAL, SHA)
    assert original.value.key == f"originals/sha256/{SHA[:2]}/{SHA}"
    assert source.read("checkpoints/5") == b"log/checkpoints/5"  # the rest reads as before


def test_a_fifo_in_an_objects_place_reads_as_missing_at_once(tmp_path: Path) -> None:
    source = local_log(tmp_path)
    (tmp_path / "log/tile/0/000").unlink()
    os.mkfifo(tmp_path / "log/tile/0/000")
    found: list[bytes | None] = []
    reader = threading.Thread(target=lambda: found.append(source.read("tile/0/000")), daemon=True)
    reader.start()
    reader.join(timeout=5)
    waited = reader.is_alive()
    if waited:  # release it, so that the test fails rather than hangs
        os.close(os.open(tmp_path / "log/tile/0/000", os.O_WRONLY | os.O_NONBLOCK))
    assert not waited
    assert found == [None]


def skip_unless_permissions_deny(tmp_path: Path) -> None:
    """Skip where a file of mode 000 can be read all the same (root, CAP_DAC_OVERRIDE)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    try:
        probe.open("rb").close()
    except PermissionError:
        return
    finally:
        probe.chmod(0o600)
    pytest.skip("this user reads files of mode 000 (root)")


def test_a_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:
    skip_unless_permissions_deny(tmp_path)
    source = local_log(tmp_path)
    (tmp_path / "log/tile/0/000").chmod(0)
    with pytest.raises(UnreadableObjectError) as tile:
        source.read("tile/0/000")
    assert tile.value.key == "tile/0/000"
    assert "Permission denied" in tile.value.found


def test_a_directory_without_permissions_fails_its_listing(tmp_path: Path) -> None:
    skip_unless_permissions_deny(tmp_path)
    source = local_log(tmp_path)
    (tmp_path / "log/checkpoints").chmod(0)
    try:
        with pytest.raises(UnreadableObjectError) as listing:
            source.archived_sizes()
        assert listing.value.key == "checkpoints/"
    finally:
        (tmp_path / "log/checkpoints").chmod(0o755)


class FailingStore(MemoryObjectStore):
    """A store whose listings may fail, and whose objects in `broken` fail part-way
    through a read."""

    def __init__(self, *, listing_fails: bool, broken: set[str]) -> None:
        super().__init__()
        self.listing_fails = listing_fails
        self.broken = broken

    def list(self, prefix: str) -> Iterator[str]:
        if self.listing_fails:
            raise StorageError(f"cannot list {prefix!r}: [Errno 5] Input/output error")
        return super().list(prefix)

    def open(self, key: str) -> BinaryIO:
        stream = super().open(key)  # missing objects stay missing
        return io.BufferedReader(BrokenRead()) if key in self.broken else stream


class BrokenRead(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise StorageError("S3 request failed: connection reset")


def test_a_failing_listing_and_a_failing_read_are_unreadable() -> None:
    store = FailingStore(
        listing_fails=True, broken={"log/tile/0/000", f"originals/sha256/{SHA[:2]}/{SHA}"}
    )
    put(store, "log/tile/0/000", b"tile")
    put(store, f"originals/sha256/{SHA[:2]}/{SHA}", b"original")
    source = StoreSource(store)

    for ask in (source.archived_sizes, lambda: source.timestamps(5), lambda: source.timestamps(6)):
        with pytest.raises(UnreadableObjectError) as listing:
            ask()
        assert listing.value.key == "checkpoints/"
        assert "Input/output error" in listing.value.found
    with pytest.raises(UnreadableObjectError, match="connection reset"):
        source.read("tile/0/000")
    assert source.read("tile/0/001") is None
    stream = source.open_sealed(ORIGINAL, SHA)
    assert stream is not None
    with stream, pytest.raises(UnreadableObjectError) as original:
        stream.read(1024)
    assert original.value.key == f"originals/sha256/{SHA[:2]}/{SHA}"


def test_a_reply_that_cannot_be_read_is_given_as_its_error_beside_the_others() -> None:
    store = FailingStore(listing_fails=False, broken={"log/checkpoints/5.tsr.1"})
    for slot in (0, 1, 2):
        put(store, f"log/checkpoints/5.tsr.{slot}", f"reply {slot}".encode())
    [first, second, third] = StoreSource(store).timestamps(5)
    assert first == ("log/checkpoints/5.tsr.0", b"reply 0")
    assert third == ("log/checkpoints/5.tsr.2", b"reply 2")
    label, error = second
    assert label == "log/checkpoints/5.tsr.1"
    assert isinstance(error, UnreadableObjectError)
    assert error.key == label
    assert "connection reset" in error.found
