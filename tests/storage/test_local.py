"""The local-directory adapter: file layout, temp files, symlinks and file modes."""

from __future__ import annotations

import io
import itertools
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import storage.local
from storage.base import (
    InvalidKeyError,
    ObjectDigestError,
    ObjectExistsError,
    ObjectNotFoundError,
    StorageError,
)
from storage.local import TMP_DIR, LocalObjectStore
from storage.streams import HashedFile
from tests.storage.support import MIB, broken, put_bytes, sha256_hex


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in (root / TMP_DIR).iterdir())


def test_key_is_the_file_at_the_same_relative_path(store: LocalObjectStore, root: Path) -> None:
    put_bytes(store, "log/tile/0/x001/234.p/5", b"tile")

    assert (root / "log" / "tile" / "0" / "x001" / "234.p" / "5").read_bytes() == b"tile"
    assert leftovers(root) == []


def test_no_temp_file_is_left_after_any_outcome(store: LocalObjectStore, root: Path) -> None:
    put_bytes(store, "a", b"first")
    put_bytes(store, "a", b"first")  # a no-op
    with pytest.raises(ObjectExistsError):
        put_bytes(store, "a", b"other")
    with pytest.raises(ObjectDigestError):
        store.put("b", io.BytesIO(b"data"), sha256=sha256_hex(b"else"), size=4)
    with pytest.raises(ConnectionResetError):
        store.put("c", broken(2 * MIB), sha256=sha256_hex(b""), size=4 * MIB)
    put_bytes(store, "d", b"mutable", mutable=True)

    assert leftovers(root) == []
    assert list(store.list("")) == ["a", "d"]


def test_create_only_objects_are_read_only(store: LocalObjectStore, root: Path) -> None:
    put_bytes(store, "sealed", b"evidence")
    put_bytes(store, "checkpoint", b"size 1", mutable=True)

    assert stat.S_IMODE((root / "sealed").stat().st_mode) == 0o444
    assert stat.S_IMODE((root / "checkpoint").stat().st_mode) == 0o644


def test_symlinked_directory_cannot_lead_out_of_the_root(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    put_bytes(store, "placeholder", b"x")
    (root / "escape").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKeyError, match="symbolic link"):
        put_bytes(store, "escape/planted", b"data")
    with pytest.raises(InvalidKeyError):
        store.open("escape/secret")
    with pytest.raises(InvalidKeyError):
        store.stat("escape/secret")
    with pytest.raises(InvalidKeyError):
        list(store.list("escape/"))

    assert sorted(path.name for path in outside.iterdir()) == ["secret"]
    assert list(store.list("")) == ["placeholder"]


def test_symlinked_file_is_not_an_object(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "target").write_bytes(b"outside")
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "target")

    with pytest.raises(InvalidKeyError):
        store.open("link")
    with pytest.raises(InvalidKeyError):
        put_bytes(store, "link", b"outside")
    assert list(store.list("")) == []


def test_stray_files_no_key_can_name_are_not_listed(store: LocalObjectStore, root: Path) -> None:
    put_bytes(store, "ok", b"1")
    (root / "has space").write_bytes(b"2")
    (root / TMP_DIR / "tmp-stale").write_bytes(b"3")

    assert list(store.list("")) == ["ok"]


def test_directory_is_not_an_object(store: LocalObjectStore) -> None:
    put_bytes(store, "dir/file", b"1")

    assert store.stat("dir") is None
    with pytest.raises(ObjectNotFoundError):
        store.open("dir")
    with pytest.raises(ObjectExistsError):
        put_bytes(store, "dir", b"2")


def without_waiting(fifo: Path, action: Callable[[], object]) -> BaseException | None:
    """What `action` raised, run in a thread; fails if it waited on `fifo` (then released by
    a writer, so that the test fails rather than hangs)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    waited = thread.is_alive()
    if waited:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
    assert not waited, "waited for a writer to the FIFO"
    assert len(outcome) == 1
    return outcome[0]


def test_a_fifo_is_not_an_object_and_is_not_waited_on(store: LocalObjectStore, root: Path) -> None:
    put_bytes(store, "log/tile/0/001", b"tile")
    fifo = root / "log/tile/0/000"
    os.mkfifo(fifo)

    opened = without_waiting(fifo, lambda: store.open("log/tile/0/000").close())
    assert isinstance(opened, ObjectNotFoundError)
    assert store.stat("log/tile/0/000") is None
    assert list(store.list("log/")) == ["log/tile/0/001"]
    # Nor is it read to compare it with the bytes of a put under its name.
    put = without_waiting(fifo, lambda: put_bytes(store, "log/tile/0/000", b"tile"))
    assert isinstance(put, ObjectExistsError)


def test_file_in_the_way_of_a_directory_is_a_storage_error(store: LocalObjectStore) -> None:
    put_bytes(store, "file", b"1")

    with pytest.raises(StorageError):
        put_bytes(store, "file/below", b"2")


def test_a_new_name_and_every_directory_made_for_it_are_synced(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(storage.local, "_fsync_dir", synced.append)

    put_bytes(store, "a/b/c", b"1")  # makes a/ and a/b/: their parents hold new names
    assert sorted(synced) == [root, root / "a", root / "a" / "b"]
    synced.clear()
    put_bytes(store, "a/b/d", b"2")  # parents exist: only the new name's directory
    assert synced == [root / "a" / "b"]
    synced.clear()
    put_bytes(store, "a/e/f", b"3", mutable=True)
    assert sorted(synced) == [root / "a", root / "a" / "e"]


def test_a_temp_directory_removed_between_puts_is_made_again(
    store: LocalObjectStore, root: Path
) -> None:
    put_bytes(store, "a", b"1")
    (root / TMP_DIR).rmdir()

    put_bytes(store, "b", b"2")
    assert (root / "b").read_bytes() == b"2"
    assert leftovers(root) == []


def test_a_temp_name_left_by_an_earlier_process_is_skipped(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_bytes(store, "a", b"1")
    monkeypatch.setattr(storage.local, "_TEMP_NAMES", itertools.count(7))
    stale = [f"put-{os.getpid()}-{n}" for n in (7, 8)]  # a crashed process had this PID
    for name in stale:
        (root / TMP_DIR / name).write_bytes(b"stale")

    put_bytes(store, "b", b"2")
    assert (root / "b").read_bytes() == b"2"
    assert leftovers(root) == stale


def test_supports_no_lock(store: LocalObjectStore) -> None:
    put_bytes(store, "k", b"v")

    assert not store.supports_lock
    assert store.lock_info("k") is None


def test_file_system_errors_are_storage_errors(store: LocalObjectStore, root: Path) -> None:
    root.mkdir()
    (root / TMP_DIR).write_bytes(b"a file where the temp directory belongs")

    with pytest.raises(StorageError, match="file-system error"):
        put_bytes(store, "k", b"v")


def test_a_whole_file_opened_rb_is_linked_not_copied(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"a large upload")
    with staged.open("rb") as source:
        store.put("originals/x", source, sha256=sha256_hex(b"a large upload"), size=14)

    assert (root / "originals" / "x").stat().st_ino == staged.stat().st_ino
    assert (root / "originals" / "x").read_bytes() == b"a large upload"
    assert leftovers(root) == []


def test_a_linked_file_with_the_wrong_digest_is_refused(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"tampered")
    with staged.open("rb") as source, pytest.raises(ObjectDigestError):
        store.put("originals/y", source, sha256=sha256_hex(b"original"), size=8)

    assert store.stat("originals/y") is None
    assert leftovers(root) == []
    assert staged.read_bytes() == b"tampered"


def test_a_hashed_file_is_linked_on_its_writers_digest_without_a_second_read(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"a large upload")
    # The writer's digest is trusted as it stands: here it names other bytes of the same
    # size, which only a read would notice. (The stager hashes what it writes, so its is true.)
    claim = sha256_hex(b"other  bytes!!")
    with HashedFile(staged, sha256=claim, size=14) as source:
        store.put("originals/h", source, sha256=claim, size=14)

    assert (root / "originals" / "h").stat().st_ino == staged.stat().st_ino
    assert leftovers(root) == []


@pytest.mark.parametrize(
    ("claimed", "claimed_size"),
    [(b"tampered", 8), (b"original", 9)],
    ids=["digest-not-the-declared-one", "size-not-the-files"],
)
def test_a_hashed_file_whose_claim_does_not_hold_is_read_and_refused(
    store: LocalObjectStore, root: Path, tmp_path: Path, claimed: bytes, claimed_size: int
) -> None:
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"tampered")
    declared = sha256_hex(b"original")
    source = HashedFile(staged, sha256=sha256_hex(claimed), size=claimed_size)
    with source, pytest.raises(ObjectDigestError):
        store.put("originals/z", source, sha256=declared, size=claimed_size)

    assert store.stat("originals/z") is None
    assert leftovers(root) == []


def test_a_file_read_part_way_is_copied_from_its_position(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"headerBODY")
    with staged.open("rb") as source:
        source.read(6)
        store.put("body", source, sha256=sha256_hex(b"BODY"), size=4)

    assert (root / "body").read_bytes() == b"BODY"
    assert (root / "body").stat().st_ino != staged.stat().st_ino
