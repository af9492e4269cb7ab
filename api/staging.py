"""Staging an upload: bytes streamed to a private temp file while hashing, in flat memory.

The event loop only collects chunks; two worker threads take each batch, one hashing and
one writing (hashlib and file writes release the GIL, so receiving, hashing and writing
run in parallel). The queues are bounded, so a fast client waits for the disk instead of
filling memory. An upload that ends before its first batch is full is never written here:
it stays in memory (at most BATCH_BYTES) and the object store writes it once.
"""

from __future__ import annotations

import io
import os
import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool

from custody.digests import MultiHasher
from custody.media import SNIFF_BYTES
from storage.streams import HashedFile

BATCH_BYTES = 2 * 1024 * 1024  # hand the workers ~2 MiB at a time: few thread hand-offs
QUEUE_BATCHES = 8  # at most ~16 MiB in flight per upload
# Flush to disk as the upload goes, so the fsync before acknowledging has little left to do.
SYNC_EVERY_BYTES = 8 * 1024 * 1024
# An in-memory upload this small is hashed on the event loop (~0.1 ms): no thread hop.
INLINE_HASH_BYTES = 256 * 1024
IOV_MAX = 1024  # POSIX's minimum is 16; Linux allows 1024 buffers per writev

Batch = list[bytes]


class UploadTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StagedFile:
    path: Path | None  # None when the upload is small enough to stay in `data`
    size: int
    digests: dict[str, str]  # hashlib name -> lowercase hex, always incl. "sha256"
    head: bytes  # the first bytes, for media type detection
    data: bytes | None = None  # the whole upload, when it was kept in memory

    def open(self) -> BinaryIO:
        """The staged bytes from the start; the caller closes it."""
        if self.path is None:
            return io.BytesIO(self.data or b"")
        # The stager created the file O_EXCL (mode 0600) and wrote it only through its own
        # handle, from the same chunks it hashed: the digest is that of the file's bytes.
        return HashedFile(self.path, sha256=self.digests["sha256"], size=self.size)


class _Worker:
    """A thread applying `consume` to each batch; keeps the first error for the producer."""

    def __init__(self, name: str, consume: Callable[[Batch], object]) -> None:
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self.error: BaseException | None = None
        self._consume = consume
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain, so the producer never blocks on a failed worker
            try:
                self._consume(batch)
            except BaseException as exc:  # reported to the producer at its next call
                self.error = exc

    def stop(self) -> None:
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join()


class Stager:
    """One upload being staged. Use `feed` for each chunk, then `finish` or `discard`."""

    def __init__(self, directory: Path, *, algorithms: set[str], max_bytes: int) -> None:
        # No I/O here: the file is made by the first full batch, in a worker's thread.
        self._directory = directory
        self.path: Path | None = None
        self._opened: BinaryIO | None = None
        self._closed = False
        self._hasher = MultiHasher(algorithms)
        self._max_bytes = max_bytes
        self._received = 0
        self._head = bytearray()
        self._batch: Batch = []
        self._batch_bytes = 0
        self._workers: tuple[_Worker, ...] = ()  # started by the first full batch
        self._unsynced = 0  # bytes written since the last fdatasync
        self._synced = 0  # bytes made durable (and dropped from the page cache) so far

    async def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._received += len(chunk)
        if self._received > self._max_bytes:
            raise UploadTooLargeError(self._max_bytes)
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= BATCH_BYTES:
            await self._hand_off()

    @property
    def _file(self) -> BinaryIO:
        """The staging file, created on first use."""
        if self._opened is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self._directory, prefix="upload-", suffix=".part")
            self.path = Path(name)
            self._opened = os.fdopen(fd, "wb")
        return self._opened

    async def finish(self) -> StagedFile:
        """Flush and return the staged file with its digests.

        No fsync here: the file is scratch space, and the object store makes the object
        durable (the local store fsyncs the very inode it links) before anything is logged.
        """
        if self._workers:
            if self._batch:
                await self._hand_off()
            await run_in_threadpool(self._stop_workers)
            self._raise_worker_error()
            await run_in_threadpool(self._close)
            data = None
        else:  # a small upload: kept in memory, never written here
            data = b"".join(self._batch)
            if len(data) <= INLINE_HASH_BYTES:
                self._hasher.update(data)
            else:
                await run_in_threadpool(self._hasher.update, data)
        digests = self._hasher.hexdigests()
        return StagedFile(self.path, self._hasher.size, digests, bytes(self._head), data)

    @property
    def on_disk(self) -> bool:
        """Whether `discard` has a file or threads to clean up."""
        return self._opened is not None or bool(self._workers)

    def discard(self) -> None:
        """Stop and remove the staged file; safe to call more than once."""
        self._stop_workers()
        if self._opened is not None and not self._closed:
            self._opened.close()
            self._closed = True
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    async def _hand_off(self) -> None:
        if not self._workers:
            self._workers = (
                _Worker("custody-stage-hash", self._hash),
                _Worker("custody-stage-write", self._write),
            )
        self._raise_worker_error()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        for worker in self._workers:
            try:
                worker.queue.put_nowait(batch)
            except queue.Full:
                await run_in_threadpool(worker.queue.put, batch)

    # One hash update and one write system call per batch, not per chunk: each call that
    # releases the GIL must win it back from the event loop, and at one per 64 KiB chunk
    # that wait, not the disk or the hash, set the upload's speed.
    def _hash(self, batch: Batch) -> None:
        self._hasher.update(batch[0] if len(batch) == 1 else b"".join(batch))

    def _write(self, batch: Batch) -> None:
        fd = self._file.fileno()
        if len(batch) > IOV_MAX:  # many tiny chunks (a slow client): one buffer instead
            batch = [b"".join(batch)]
        total = sum(len(chunk) for chunk in batch)
        written = os.writev(fd, batch)
        if written < total:  # a short write: finish the rest one call at a time
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        self._unsynced += total
        if self._unsynced >= SYNC_EVERY_BYTES:
            os.fdatasync(fd)
            # Written and durable: let the kernel drop these pages now rather than keep a
            # large upload in the page cache, pushing out what is worth keeping there. The
            # next batches then reuse pages just freed instead of claiming fresh memory.
            end = self._synced + self._unsynced
            os.posix_fadvise(fd, self._synced, end - self._synced, os.POSIX_FADV_DONTNEED)
            self._synced, self._unsynced = end, 0

    def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.stop()

    def _raise_worker_error(self) -> None:
        for worker in self._workers:
            if worker.error is not None:
                raise worker.error

    def _close(self) -> None:
        self._file.close()
        self._closed = True
