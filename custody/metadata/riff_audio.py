"""WAV sharing copies (RIFF WAVE, Multimedia Programming Interface 1.0): an allowlist of chunks."""

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

# Kept: the format, the fact chunk (sample count of compressed formats) and the samples.
# Everything else goes: LIST/INFO (artist, comments, dates), bext (BWF originator and
# origination date and time), iXML and axml (production metadata), id3/ID3, _PMX (XMP),
# cue/smpl/inst/adtl (markers and their labels), PEAK, junk and pad.
_KEPT = (b"fmt ", b"fact", b"data")


def _container_end(source: BinaryIO, size: int) -> int:
    head = read_at(source, 0, 12, "RIFF header") if size >= 12 else b""
    if head[:4] in (b"RF64", b"BW64"):
        raise StripError("RF64/BW64 (WAV over 4 GiB) is not supported")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise StripError("not a RIFF WAVE file")
    return container_end(8 + int.from_bytes(head[4:8], "little"), size, "RIFF")


def _pick(chunks: list[Chunk], removed: list[str]) -> dict[bytes, Chunk]:
    kept = pick_chunks(
        chunks,
        _KEPT,
        removed,
        after=(b"data", b"fmt ", "'data' before 'fmt ' (RIFF WAVE requires the format first)"),
    )
    if b"data" not in kept:
        raise StripError("no 'data' chunk")
    return kept


def _check_sizes(source: BinaryIO, kept: dict[bytes, Chunk]) -> None:
    """'fmt ' is PCMWAVEFORMAT (16 bytes) or WAVEFORMATEX (18 bytes and cbSize more);
    'fact' is one sample count (4 bytes)."""
    fmt = kept[b"fmt "]
    expected = 16
    if fmt.size >= 18:
        expected = 18 + int.from_bytes(read_at(source, fmt.start + 16, 2, "cbSize"), "little")
    check_size(fmt, expected)
    if b"fact" in kept:
        check_size(kept[b"fact"], 4)


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    end = _container_end(source, source_size(source))
    kept = _pick(list(iff_chunks(source, 12, end, "little")), removed)
    _check_sizes(source, kept)
    pieces: list[Piece] = []
    length = 4  # "WAVE"
    for kind in _KEPT:
        chunk = kept.get(kind)
        if chunk is None:
            continue
        pad = b"\0" * (chunk.size & 1)  # written as zero: the source's pad byte could be anything
        header = kind + chunk.size.to_bytes(4, "little")
        pieces += [header, Span(chunk.start, chunk.size, content=kind == b"data"), pad]
        length += 8 + chunk.size + len(pad)
    return Plan(tuple(removed), [b"RIFF" + length.to_bytes(4, "little") + b"WAVE", *pieces])


class WavStripper(PlannedStripper):
    """Keeps 'fmt ', 'fact' and 'data' (samples byte for byte); drops every other chunk."""

    name = "wav"
    version = "1"
    media_types = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
    content_kind = "riff-wave-data"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
