"""cli.read_ahead: reading ahead what the audit announces, answering the same."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import BinaryIO, cast

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


class BlockedStream(io.RawIOBase):
    """`chunks` chunks of a sealed object, each read waiting for `gate`; a read of the
    stream once it is closed is recorded (and fails), as the closed socket would."""

    def __init__(self, gate: threading.Event, chunks: int = 5) -> None:
        self.gate = gate
        self.left = chunks
        self.reads = 0
        self.reading = threading.Event()
        self.read_when_closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            self.read_when_closed = True
            raise ValueError("read of a closed stream")
        self.reads += 1
        self.reading.set()
        self.gate.wait(timeout=10)
        if self.left == 0:
            return b""
        self.left -= 1
        return b"x" * 16


class BlockedSealed(SlowSource):
    """A source whose sealed objects are BlockedStreams, kept to be looked at."""

    def __init__(self) -> None:
        super().__init__({})
        self.streams: list[BlockedStream] = []

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        stream = BlockedStream(self.gate)
        self.streams.append(stream)
        return cast(BinaryIO, stream)


def read_through(stream: BinaryIO | None) -> int:
    assert stream is not None
    with stream:
        return sum(len(chunk) for chunk in iter(lambda: stream.read(16), b""))


def test_a_stream_read_while_the_read_ahead_closes_ends_cancelled() -> None:
    source = BlockedSealed()
    ahead = ReadAhead(source, workers=1, window=2)
    outcome: list[object] = []

    def audit() -> None:
        rehash = lambda sha256: read_through(ahead.open_sealed("original", sha256))  # noqa: E731
        try:
            outcome.extend(ahead.map_ahead(rehash, ["a", "b"]))
        except CancelledError as exc:
            outcome.append(exc)

    auditor = threading.Thread(target=audit)
    auditor.start()
    wait_until(lambda: source.streams and source.streams[0].reading.is_set(), "the first read")
    closing = threading.Thread(target=ahead.close)
    closing.start()
    closing.join(timeout=2)
    assert not closing.is_alive(), "close() waited for a read the source holds"
    source.gate.set()  # the read in flight at close now returns
    auditor.join(timeout=10)
    closing.join(timeout=10)
    assert not auditor.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], CancelledError)
    assert len(source.streams) == 1  # the object behind it was never opened
    stream = source.streams[0]
    # The auditor may have met the close first (announcing the next object): the worker
    # whose read was in flight ends on its own, closing the stream as it goes.
    wait_until(lambda: stream.closed, "the stream read at close to be closed")
    assert stream.reads == 1  # nothing read after close but the read already in flight
    assert not stream.read_when_closed


def test_a_stream_opened_before_close_and_read_after_it_is_cancelled() -> None:
    source = BlockedSealed()
    source.gate.set()
    with ReadAhead(source) as ahead:
        stream = ahead.open_sealed("original", "a")
        assert stream is not None
        assert stream.read(16) == b"x" * 16
    with pytest.raises(CancelledError):
        stream.read(16)
    assert source.streams[0].reads == 1
    assert source.streams[0].closed
    assert not source.streams[0].read_when_closed
    with pytest.raises(CancelledError):
        ahead.open_sealed("original", "b")
    with pytest.raises(CancelledError):
        ahead.read("tile/entries/000")
    assert len(source.streams) == 1
    assert source.reads == []


def wait_until(condition: Callable[[], object], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"timed out waiting for {what}")
