"""Fail-closed byte reading for the strippers, and the one Exif field they carry over (TIFF 6.0)."""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol

from custody.metadata.base import StripError

CHUNK = 1 << 16  # bytes per read: the strippers' memory is a small multiple of this
Emit = Callable[[bytes], object]

ORIENTATION_TAG = 0x0112  # TIFF 6.0 p. 36; Exif 2.32 §4.6.4 A
_SHORT = 3  # TIFF field type SHORT
_EXIF_PREFIX = b"Exif\x00\x00"  # JPEG APP1 identifier, also found inside WebP/PNG Exif blocks


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def discard(_: bytes) -> None:
    """An emit target for digest-only walks."""


class Reader:
    """Buffered reads that raise StripError instead of returning short data."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._buf = b""
        self._pos = 0

    def window(self, min_bytes: int) -> tuple[bytes, int]:
        """The buffer and the read position, with `min_bytes` ahead unless the input ends."""
        while len(self._buf) - self._pos < min_bytes:
            more = self._source.read(max(CHUNK, min_bytes))
            if not more:
                break
            self._buf = self._buf[self._pos :] + more
            self._pos = 0
        return self._buf, self._pos

    def advance(self, count: int) -> None:
        self._pos += count

    def exact(self, count: int, what: str) -> bytes:
        parts: list[bytes] = []
        left = count
        while left:
            buf, pos = self.window(1)
            piece = buf[pos : pos + left]
            if not piece:
                raise StripError(f"truncated {what}: {count} bytes expected")
            parts.append(piece)
            self.advance(len(piece))
            left -= len(piece)
        return b"".join(parts)

    def copy(self, count: int, emit: Emit, what: str) -> None:
        """Stream `count` bytes to `emit` in pieces of at most CHUNK bytes."""
        left = count
        while left:
            buf, pos = self.window(1)
            piece = buf[pos : pos + min(left, CHUNK)]
            if not piece:
                raise StripError(f"truncated {what}: {count} bytes expected")
            emit(piece)
            self.advance(len(piece))
            left -= len(piece)

    def at_eof(self) -> bool:
        buf, pos = self.window(1)
        return pos >= len(buf)


class Slice:
    """A byte range of a seekable source, read as a stream of its own."""

    def __init__(self, source: BinaryIO, offset: int, length: int) -> None:
        self._source = source
        self._at = offset
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        self._source.seek(self._at)
        data = self._source.read(size)
        self._at += len(data)
        self._left -= len(data)
        return data


def source_size(source: BinaryIO, fmt: str) -> int:
    """The length of a seekable source; formats with offsets (TIFF) or sizes up front need it."""
    if not source.seekable():
        raise StripError(f"{fmt} sharing copies need a seekable source")
    size = source.seek(0, 2)
    source.seek(0)
    return size


def read_at(source: BinaryIO, offset: int, count: int, what: str) -> bytes:
    source.seek(offset)
    data = source.read(count)
    if len(data) != count:
        raise StripError(f"truncated {what}: {count} bytes expected at offset {offset}")
    return data


def copy_at(source: BinaryIO, offset: int, count: int, emit: Emit, what: str) -> None:
    source.seek(offset)
    Reader(source).copy(count, emit, what)


def exif_orientation(block: bytes) -> int | None:
    """Orientation (2-8) from IFD0 of an Exif TIFF block, or None when absent, 1 or unreadable.

    Unreadable Exif is dropped whole, so it cannot leak; only the rotation hint is lost.
    """
    if block.startswith(_EXIF_PREFIX):
        block = block[len(_EXIF_PREFIX) :]
    order = {b"II": "<", b"MM": ">"}.get(block[:2])
    if order is None or len(block) < 8:
        return None
    magic, ifd = struct.unpack_from(order + "HI", block, 2)
    if magic != 42 or ifd + 2 > len(block):
        return None
    (count,) = struct.unpack_from(order + "H", block, ifd)
    for index in range(count):
        at = ifd + 2 + 12 * index
        if at + 12 > len(block):
            return None
        tag, kind, n, value = struct.unpack_from(order + "HHIH", block, at)
        if tag == ORIENTATION_TAG:
            return value if kind == _SHORT and n == 1 and 2 <= value <= 8 else None
    return None


def orientation_exif(orientation: int) -> bytes:
    """A TIFF block holding only IFD0 Orientation.

    Always big-endian: the original's byte order hints at the camera maker.
    """
    entry = struct.pack(">HHIHH", ORIENTATION_TAG, _SHORT, 1, orientation, 0)
    return b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + entry + struct.pack(">I", 0)


def overlaps(spans: Iterable[tuple[int, int]], regions: Iterable[tuple[int, int]]) -> bool:
    """Whether any non-empty half-open span [start, end) meets any of the regions."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in regions if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    starts = [start for start, _ in merged]
    for start, end in spans:
        at = bisect.bisect_right(starts, start) - 1  # the last region starting at or before
        if end > start and (
            (at >= 0 and merged[at][1] > start) or (at + 1 < len(merged) and starts[at + 1] < end)
        ):
            return True
    return False


def unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
