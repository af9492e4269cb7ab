"""Staging an upload: bytes streamed to a private temp file while hashing, in flat memory.

The event loop only collects chunks; two worker threads take each batch, one hashing and
one writing (hashlib and file writes release the GIL, so receiving, hashing and writing
run in parallel). The queues are bounded, so a fast client waits for the disk instead of
filling memory.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from custody.digests import MultiHasher
from custody.media import SNIFF_BYTES

BATCH_BYTES = 1024 * 1024  # hand the workers ~1 MiB at a time: few thread hand-offs
QUEUE_BATCHES = 16  # at most ~16 MiB in flight per upload
# Flush to disk as the upload goes, so the fsync before acknowledging has little left to do.
SYNC_EVERY_BYTES = 64 * 1024 * 1024

Batch = list[bytes]


class UploadTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StagedFile:
    path: Path
    size: int
    digests: dict[str, str]  # hashlib name -> lowercase hex, always incl. "sha256"
    head: bytes  # the first bytes, for media type detection


class _Worker:
    """A thread applying `consume` to each batch; keeps the first error for the producer."""

    def __init__(self, name: str, consume: Callable[[bytes], object]) -> None:
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
                for chunk in batch:
                    self._consume(chunk)
            except BaseException as exc:  # reported to the producer at its next call
                self.error = exc

    def stop(self) -> None:
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join()


class Stager:
    """One upload being staged. Use `feed` for each chunk, then `finish` or `discard`."""

    def __init__(self, directory: Path, *, algorithms: set[str], max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._closed = False
        self._hasher = MultiHasher(algorithms)
        self._max_bytes = max_bytes
        self._received = 0
        self._head = bytearray()
        self._batch: Batch = []
        self._batch_bytes = 0
        self._workers: tuple[_Worker, ...] = ()  # started by the first full batch
        self._unsynced = 0

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
        else:  # a small upload: one thread hop, no worker threads
            await run_in_threadpool(self._consume_and_close, self._batch)
        return StagedFile(
            self.path, self._hasher.size, self._hasher.hexdigests(), bytes(self._head)
        )

    def discard(self) -> None:
        """Stop and remove the staged file; safe to call more than once."""
        self._stop_workers()
        if not self._closed:
            self._file.close()
            self._closed = True
        self.path.unlink(missing_ok=True)

    async def _hand_off(self) -> None:
        if not self._workers:
            self._workers = (
                _Worker("custody-stage-hash", self._hasher.update),
                _Worker("custody-stage-write", self._write),
            )
        self._raise_worker_error()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        for worker in self._workers:
            try:
                worker.queue.put_nowait(batch)
            except queue.Full:
                await run_in_threadpool(worker.queue.put, batch)

    def _write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._unsynced += len(chunk)
        if self._unsynced >= SYNC_EVERY_BYTES:
            self._file.flush()
            os.fdatasync(self._file.fileno())
            self._unsynced = 0

    def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.stop()

    def _raise_worker_error(self) -> None:
        for worker in self._workers:
            if worker.error is not None:
                raise worker.error

    def _consume_and_close(self, batch: Batch) -> None:
        for chunk in batch:
            self._hasher.update(chunk)
            self._file.write(chunk)
        self._close()

    def _close(self) -> None:
        self._file.close()
        self._closed = True
