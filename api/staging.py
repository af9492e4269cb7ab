"""Staging an upload: bytes streamed to a private temp file while hashing, in flat memory.

The event loop only batches chunks; a worker thread hashes and writes them (hashlib and
file writes release the GIL, so receiving and hashing overlap). The queue is bounded, so a
fast client waits for the disk instead of filling memory.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from custody.digests import MultiHasher
from custody.media import SNIFF_BYTES

BATCH_BYTES = 1024 * 1024  # hand the worker 1 MiB at a time: few thread hand-offs
QUEUE_BATCHES = 16  # at most ~16 MiB in flight per upload


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


class Stager:
    """One upload being staged. Use `feed` for each chunk, then `finish` or `discard`."""

    def __init__(self, directory: Path, *, algorithms: set[str], max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hasher = MultiHasher(algorithms)
        self._max_bytes = max_bytes
        self._received = 0
        self._head = bytearray()
        self._batch = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="custody-stager", daemon=True)
        self._worker.start()
        self._closed = False

    async def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._received += len(chunk)
        if self._received > self._max_bytes:
            raise UploadTooLargeError(self._max_bytes)
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._batch += chunk
        if len(self._batch) >= BATCH_BYTES:
            await self._hand_off()

    async def finish(self) -> StagedFile:
        """Flush, fsync and return the staged file with its digests."""
        if self._batch:
            await self._hand_off()
        await run_in_threadpool(self._stop_worker)
        self._raise_worker_error()
        await run_in_threadpool(self._sync_and_close)
        return StagedFile(
            self.path, self._hasher.size, self._hasher.hexdigests(), bytes(self._head)
        )

    def discard(self) -> None:
        """Stop and remove the staged file; safe to call more than once."""
        self._stop_worker()
        if not self._closed:
            self._file.close()
            self._closed = True
        self.path.unlink(missing_ok=True)

    async def _hand_off(self) -> None:
        self._raise_worker_error()
        item = bytes(self._batch)
        self._batch.clear()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await run_in_threadpool(self._queue.put, item)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain so the producer never blocks on a dead worker
            try:
                self._hasher.update(item)
                self._file.write(item)
            except BaseException as exc:  # reported to the producer at its next call
                self._error = exc

    def _stop_worker(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _sync_and_close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._closed = True
