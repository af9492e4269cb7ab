"""Streaming plumbing shared by the audio strippers: copy plans, exact reads, IFF chunk walks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from custody.metadata.base import StripError, StripReport

BLOCK = 1 << 20  # bytes per read when copying: memory stays flat however long the recording


@dataclass(frozen=True, slots=True)
class Span:
    """A byte range of the source copied verbatim; `content` ranges make the content digest."""

    start: int
    length: int
    content: bool = False


Piece = bytes | Span  # bytes are new (rewritten headers), spans are the source's own


@dataclass(frozen=True, slots=True)
class Plan:
    """What a copy is made of, decided by parsing; `pieces` may be lazy (Ogg pages)."""

    removed: tuple[str, ...]
    pieces: Iterable[Piece]


class PlannedStripper:
    """A stripper whose format module only plans: writing and digesting are the same for all.

    On StripError the sink holds a partial copy, which the caller must discard: a lazy plan
    (Ogg) can find a broken page after the first pages were written.
    """

    name = ""
    version = ""
    media_types: frozenset[str] = frozenset()
    content_kind = ""

    def plan(self, source: BinaryIO) -> Plan:
        raise NotImplementedError

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        plan = self.plan(source)
        digest = hashlib.sha256()
        for piece in plan.pieces:
            if isinstance(piece, bytes):
                sink.write(piece)
                continue
            for block in read_blocks(source, piece.start, piece.length):
                if piece.content:
                    digest.update(block)
                sink.write(block)
        return StripReport(plan.removed, digest.hexdigest(), self.content_kind)

    def content_digest(self, source: BinaryIO) -> str:
        digest = hashlib.sha256()
        for piece in self.plan(source).pieces:
            if isinstance(piece, Span) and piece.content:
                for block in read_blocks(source, piece.start, piece.length):
                    digest.update(block)
        return digest.hexdigest()


def source_size(source: BinaryIO) -> int:
    """The source's length; the strippers seek (trailing tags, moov after mdat)."""
    if not source.seekable():
        raise StripError("the source must be seekable")
    return source.seek(0, 2)


def read_at(source: BinaryIO, offset: int, length: int, what: str) -> bytes:
    """Exactly `length` bytes at `offset`, or StripError naming `what` was cut short."""
    source.seek(offset)
    data = source.read(length)
    if len(data) != length:
        raise StripError(f"truncated {what} at offset {offset}")
    return data


def read_blocks(source: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """The bytes of [start, start + length) in blocks of at most BLOCK bytes."""
    position, end = start, start + length
    while position < end:
        block = read_at(source, position, min(BLOCK, end - position), "audio data")
        position += len(block)
        yield block


def printable(tag: bytes) -> str:
    """A chunk or box type as text for reports (never a value, so nothing personal)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in tag)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One IFF chunk: its 4-byte id, where its payload starts and how long it is."""

    id: bytes
    start: int
    size: int


def iff_chunks(
    source: BinaryIO, start: int, end: int, byteorder: Literal["little", "big"]
) -> Iterator[Chunk]:
    """The chunks filling [start, end) exactly (EA IFF 85: id, size, payload, pad to even)."""
    position = start
    while position < end:
        if end - position < 8:
            raise StripError(f"{end - position} stray bytes after the last chunk")
        header = read_at(source, position, 8, "chunk header")
        size = int.from_bytes(header[4:], byteorder)
        payload_end = position + 8 + size
        if payload_end > end:
            raise StripError(f"chunk {printable(header[:4])!r} runs past its container")
        yield Chunk(header[:4], position + 8, size)
        # The pad byte of an odd chunk is sometimes missing when it is the last one.
        position = min(payload_end + (size & 1), end)


def container_end(declared_end: int, size: int, name: str) -> int:
    """Where an IFF container (RIFF, FORM) ends, refusing one that overruns the file or
    leaves bytes after it (nothing unparsed may ride along into a copy)."""
    # The odd last chunk's pad byte may be missing at the end of the file.
    if declared_end > size and not (declared_end == size + 1 and size % 2):
        raise StripError(f"the {name} size runs past the end of the file")
    if declared_end < size:
        raise StripError(f"{size - declared_end} bytes after the {name} chunk (not parsed)")
    return min(declared_end, size)


def pick_chunks(
    chunks: Iterable[Chunk],
    kept_ids: tuple[bytes, ...],
    removed: list[str],
    *,
    after: tuple[bytes, bytes, str] | None = None,
) -> dict[bytes, Chunk]:
    """The allowlisted chunks, each at most once; the others' ids go to `removed`.

    `after` = (chunk, earlier chunk, reason): refuse `chunk` unless `earlier` came first.
    """
    kept: dict[bytes, Chunk] = {}
    for chunk in chunks:
        if chunk.id not in kept_ids:
            removed.append(printable(chunk.id))
        elif chunk.id in kept:
            raise StripError(f"more than one {printable(chunk.id)!r} chunk")
        elif after is not None and chunk.id == after[0] and after[1] not in kept:
            raise StripError(after[2])
        else:
            kept[chunk.id] = chunk
    return kept


def check_size(chunk: Chunk, expected: int) -> None:
    """Refuse a kept chunk longer or shorter than its own fields say it is: it is copied
    verbatim, so bytes after its fields would ride along unread."""
    if chunk.size != expected:
        raise StripError(
            f"{printable(chunk.id)!r} chunk of {chunk.size} bytes, not the {expected} its"
            " fields give"
        )
