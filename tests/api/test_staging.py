"""Staging uploads: digests while streaming, size limit, nothing left behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from api.staging import BATCH_BYTES, IOV_MAX, Stager, UploadTooLargeError
from custody.media import SNIFF_BYTES


def test_stage_digests_and_head(tmp_path: Path) -> None:
    chunks = [os.urandom(n) for n in (10, BATCH_BYTES, 3 * BATCH_BYTES + 7, 1)]
    data = b"".join(chunks)

    async def run() -> None:
        stager = Stager(tmp_path, algorithms={"sha512"}, max_bytes=len(data))
        for chunk in chunks:
            await stager.feed(chunk)
        staged = await stager.finish()
        assert staged.size == len(data)
        assert staged.digests == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest(),
        }
        assert staged.head == data[:SNIFF_BYTES]
        assert staged.path.read_bytes() == data
        stager.discard()
        assert not staged.path.exists()

    asyncio.run(run())
    assert list(tmp_path.iterdir()) == []


def test_a_small_upload_stays_in_memory(tmp_path: Path) -> None:
    chunks = [os.urandom(n) for n in (10, 300, 1)]
    data = b"".join(chunks)

    async def run() -> None:
        stager = Stager(tmp_path / "staging", algorithms={"sha512"}, max_bytes=len(data))
        for chunk in chunks:
            await stager.feed(chunk)
        staged = await stager.finish()
        assert (staged.path, staged.data, staged.size) == (None, data, len(data))
        assert staged.digests == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest(),
        }
        with staged.open() as stream:
            assert stream.read() == data
        assert not stager.on_disk
        stager.discard()

    asyncio.run(run())
    assert not (tmp_path / "staging").exists(), "nothing was written for a small upload"


def test_over_limit_raises_and_discard_cleans(tmp_path: Path) -> None:
    async def run() -> None:
        stager = Stager(tmp_path, algorithms=set(), max_bytes=100)
        await stager.feed(b"x" * 100)
        with pytest.raises(UploadTooLargeError):
            await stager.feed(b"y")
        stager.discard()
        stager.discard()

    asyncio.run(run())
    assert list(tmp_path.iterdir()) == []


def test_disk_error_reaches_the_producer(tmp_path: Path) -> None:
    async def run() -> None:
        stager = Stager(tmp_path, algorithms=set(), max_bytes=10**9)
        stager._file.close()  # the worker's next write fails, as on a full or lost disk

        async def feed_all() -> None:
            for _ in range(40):
                await stager.feed(b"z" * BATCH_BYTES)
            await stager.finish()

        with pytest.raises(ValueError, match="closed file"):
            await feed_all()
        stager.discard()

    asyncio.run(run())
    assert list(tmp_path.iterdir()) == []


def test_short_writes_and_tiny_chunks_still_stage_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writev that writes less than asked (allowed by POSIX) is completed, and a batch of
    more chunks than one writev takes is written as one buffer; both cross the sync size."""
    real_writev = os.writev

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        return real_writev(fd, [b[: len(b) // 2] for b in buffers[:1]])

    monkeypatch.setattr(os, "writev", short_writev)
    monkeypatch.setattr("api.staging.SYNC_EVERY_BYTES", BATCH_BYTES)
    chunks = [os.urandom(BATCH_BYTES), *(os.urandom(100) for _ in range(3 * IOV_MAX))]
    chunks += [os.urandom(BATCH_BYTES)]
    data = b"".join(chunks)

    async def run() -> None:
        stager = Stager(tmp_path, algorithms=set(), max_bytes=len(data))
        for chunk in chunks:
            await stager.feed(chunk)
        staged = await stager.finish()
        assert staged.path.read_bytes() == data
        assert staged.digests == {"sha256": hashlib.sha256(data).hexdigest()}
        stager.discard()

    asyncio.run(run())
