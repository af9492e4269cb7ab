"""AIFF and AIFF-C sharing copies (Apple AIFF 1.3, AIFF-C draft 1991): an allowlist of chunks."""

from __future__ import annotations

from typing import BinaryIO

from custody.metadata.audio_common import (
    Chunk,
    Piece,
    Plan,
    PlannedStripper,
    Span,
    check_size,
    container_end,
    iff_chunks,
    pick_chunks,
    read_at,
    source_size,
)
from custody.metadata.base import StripError

# Kept: the format version (AIFF-C), the common chunk, Apple's channel layout (numbers only,
# needed to place more than two channels) and the sound data. Everything else goes: NAME,
# AUTH, "(c) ", ANNO, COMT (comments with dates), ID3 , APPL (opaque, anything), MARK and
# INST (marker names), MIDI, AESD, and unknown chunks.
_KEPT = (b"FVER", b"COMM", b"CHAN", b"SSND")


def _container_end(source: BinaryIO, size: int) -> int:
    head = read_at(source, 0, 12, "FORM header") if size >= 12 else b""
    if head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        raise StripError("not an AIFF or AIFF-C file")
    return container_end(8 + int.from_bytes(head[4:8], "big"), size, "FORM")


def _pick(chunks: list[Chunk], removed: list[str]) -> dict[bytes, Chunk]:
    kept = pick_chunks(chunks, _KEPT, removed)
    if b"COMM" not in kept:
        raise StripError("no 'COMM' chunk")
    return kept


def _check_sizes(source: BinaryIO, kept: dict[bytes, Chunk], form: bytes) -> None:
    """FVER: a timestamp (4 bytes). COMM: 18 bytes, and in AIFF-C the compression type and
    its name, a Pascal string (count byte, text, a pad byte to an even length, which some
    writers leave out). CHAN: Apple's channel layout, 12 bytes and 20 per description."""
    if b"FVER" in kept:
        check_size(kept[b"FVER"], 4)
    comm = kept[b"COMM"]
    expected = 18
    if form == b"AIFC":
        count = read_at(source, comm.start + 22, 1, "COMM")[0] if comm.size > 22 else 0
        unpadded = 23 + count
        expected = unpadded if comm.size == unpadded else unpadded + unpadded % 2
    check_size(comm, expected)
    if b"CHAN" in kept:
        chan = kept[b"CHAN"]
        descriptions = read_at(source, chan.start + 8, 4, "CHAN") if chan.size >= 12 else b""
        check_size(chan, 12 + 20 * int.from_bytes(descriptions, "big"))


def _sound(source: BinaryIO, chunk: Chunk) -> list[Piece]:
    """SSND: offset and block size, then `offset` bytes of nothing, then the sample frames.

    The skipped bytes are written as zeros: they are not audio, so they could be anything.
    """
    if chunk.size < 8:
        raise StripError("'SSND' chunk too short")
    head = read_at(source, chunk.start, 8, "SSND")
    offset = int.from_bytes(head[:4], "big")
    if offset > chunk.size - 8:
        raise StripError("'SSND' offset runs past its chunk")
    frames = chunk.start + 8 + offset
    return [head, bytes(offset), Span(frames, chunk.size - 8 - offset, content=True)]


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    end = _container_end(source, source_size(source))
    form = read_at(source, 8, 4, "FORM type")
    kept = _pick(list(iff_chunks(source, 12, end, "big")), removed)
    _check_sizes(source, kept, form)
    pieces: list[Piece] = []
    length = 4  # the form type
    for kind in _KEPT:
        chunk = kept.get(kind)
        if chunk is None:
            continue
        body = _sound(source, chunk) if kind == b"SSND" else [Span(chunk.start, chunk.size)]
        pad = b"\0" * (chunk.size & 1)
        pieces += [kind + chunk.size.to_bytes(4, "big"), *body, pad]
        length += 8 + chunk.size + len(pad)
    return Plan(tuple(removed), [b"FORM" + length.to_bytes(4, "big") + form, *pieces])


class AiffStripper(PlannedStripper):
    """Keeps FVER, COMM, CHAN and SSND (sample frames byte for byte); drops other chunks."""

    name = "aiff"
    version = "1"
    media_types = frozenset({"audio/aiff", "audio/x-aiff"})
    content_kind = "aiff-ssnd-sample-frames"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
