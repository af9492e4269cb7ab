"""cli.read_ahead: reading ahead what the audit announces, answering the same."""

from __future__ import annotations

import threading
from typing import BinaryIO

import pytest

from cli.read_ahead import ReadAhead


class SlowSource:
    """Objects by path; each read waits for `gate` and is logged with the thread that made it."""

    remote = True
    sealed_kinds = ("original",)

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.gate = threading.Event()
        self.reads: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def read(self, path: str) -> bytes | None:
        with self._lock:
            self.reads.append((path, threading.current_thread().name))
        self.gate.wait(timeout=10)
        if path == "broken":
            raise ValueError("HTTP 401: the tiles need an auditor's token")
        return self.objects.get(path)

    def archived_sizes(self) -> list[int]:
        return [1, 2]

    def timestamps(self, size: int) -> list[tuple[str, bytes]]:
        return [(f"checkpoints/{size}.tsr.0", b"reply")]

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        return None


def objects(count: int) -> dict[str, bytes]:
    return {f"tile/entries/{i:03d}": f"bundle {i}".encode() for i in range(count)}


def wait_for_reads(source: SlowSource, count: int) -> None:
    for _ in range(1000):
        if len(source.reads) >= count:
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"{len(source.reads)} reads, expected {count}")


def test_announced_paths_are_fetched_ahead_within_the_window() -> None:
    source = SlowSource(objects(100))
    with ReadAhead(source, workers=2, window=5) as ahead:
        ahead.prefetch(iter(sorted(source.objects)))
        wait_for_reads(source, 2)  # two workers, each waiting at the gate
        source.gate.set()
        wait_for_reads(source, 5)
        threading.Event().wait(0.05)
        assert len(source.reads) == 5  # no more than the window before anything is read
        assert all(name.startswith("custody-read-ahead") for _, name in source.reads)
        for path in sorted(source.objects):
            assert ahead.read(path) == source.objects[path]
    assert sorted(path for path, _ in source.reads) == sorted(source.objects)  # each once


def test_reads_outside_the_announcement_and_missing_objects_read_as_without_it() -> None:
    source = SlowSource(objects(3))
    source.gate.set()
    with ReadAhead(source) as ahead:
        ahead.prefetch(iter(["tile/entries/002", "missing"]))
        assert ahead.read("tile/entries/000") == b"bundle 0"  # not announced: read now
        assert ahead.read("missing") is None
        assert ahead.read("tile/entries/002") == b"bundle 2"
        assert ahead.read("tile/entries/002") == b"bundle 2"  # read again: from the source
        assert ahead.archived_sizes() == [1, 2]
        assert ahead.timestamps(2) == [("checkpoints/2.tsr.0", b"reply")]
        assert ahead.sealed_kinds == ("original",)
    reads = [path for path, _ in source.reads]
    assert sorted(reads) == sorted(
        ["tile/entries/002", "missing", "tile/entries/000", "tile/entries/002"]
    )


def test_a_fetch_that_failed_raises_when_its_path_is_read() -> None:
    source = SlowSource({})
    source.gate.set()
    with ReadAhead(source) as ahead:
        ahead.prefetch(iter(["broken"]))
        with pytest.raises(ValueError, match="auditor's token"):
            ahead.read("broken")


def test_timestamps_announced_are_fetched_ahead_and_answer_the_same() -> None:
    source = SlowSource({})
    source.gate.set()
    with ReadAhead(source) as ahead:
        ahead.prefetch_timestamps(iter([2, 3]))
        assert ahead.timestamps(3) == [("checkpoints/3.tsr.0", b"reply")]
        assert ahead.timestamps(2) == [("checkpoints/2.tsr.0", b"reply")]
        assert ahead.timestamps(9) == [("checkpoints/9.tsr.0", b"reply")]


def test_map_ahead_keeps_the_order_runs_on_the_workers_and_raises_in_place() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def slow_square(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.002 * (n % 3))
        with lock:
            running -= 1
        if n == 40:
            raise ValueError("object 40 unreadable")
        return n * n

    with ReadAhead(SlowSource({}), workers=3, window=6) as ahead:
        assert list(ahead.map_ahead(slow_square, range(30))) == [n * n for n in range(30)]
        assert 1 < most <= 3
        results = ahead.map_ahead(slow_square, range(35, 50))
        assert [next(results) for _ in range(5)] == [n * n for n in range(35, 40)]
        with pytest.raises(ValueError, match="object 40 unreadable"):
            next(results)
