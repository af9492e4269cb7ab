"""FLAC sharing copies (RFC 9639): STREAMINFO, SEEKTABLE and the frames; no other blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from custody.metadata.audio_common import Piece, Plan, PlannedStripper, Span, read_at, source_size
from custody.metadata.audio_flacframes import check_frames
from custody.metadata.audio_tags import skip_leading_id3v2, strip_trailing_tags
from custody.metadata.base import StripError

_STREAMINFO, _SEEKTABLE = 0, 3
# §8.1 block types. Everything but STREAMINFO and SEEKTABLE goes: VORBIS_COMMENT and PICTURE
# carry names and cover art; APPLICATION blocks are opaque (they can hold anything); PADDING
# can hold stale bytes of earlier tags; CUESHEET's catalog number and ISRCs identify a
# recording, and none of them is needed to decode.
_BLOCK_NAMES = {
    1: "PADDING",
    2: "APPLICATION",
    4: "VORBIS_COMMENT",
    5: "CUESHEET",
    6: "PICTURE",
}
_LAST = 0x80  # §8.1: the "last metadata block" flag


@dataclass
class _Blocks:
    streaminfo: bytes = b""
    seektable: Span | None = None
    removed: list[str] = field(default_factory=list)


def _read_blocks(source: BinaryIO, position: int, end: int) -> tuple[_Blocks, int]:
    """The metadata blocks after "fLaC" at `position`, and where the first frame starts."""
    blocks = _Blocks()
    first, last = position, False
    while not last:
        header = read_at(source, position, 4, "FLAC metadata block header")
        last, kind = bool(header[0] & _LAST), header[0] & 0x7F
        length = int.from_bytes(header[1:], "big")
        body, is_first = position + 4, position == first
        position = body + length
        if position > end:
            raise StripError("FLAC metadata block runs past the end of the file")
        if kind == 127:  # §8.1: forbidden, so that a frame sync cannot pass for a block header
            raise StripError("FLAC metadata block of the forbidden type 127")
        if (kind == _STREAMINFO) != is_first:
            raise StripError("STREAMINFO is not the first and only FLAC streaminfo block")
        if kind == _STREAMINFO:
            blocks.streaminfo = _streaminfo(read_at(source, body, length, "STREAMINFO"))
        elif kind == _SEEKTABLE and blocks.seektable is None and length % 18 == 0:
            blocks.seektable = Span(body, length)  # §8.5: 18-byte seek points, numbers only
        elif kind == _SEEKTABLE:
            raise StripError("malformed or repeated FLAC SEEKTABLE")
        else:
            blocks.removed.append(_BLOCK_NAMES.get(kind, f"reserved block type {kind}"))
    return blocks, position


def _streaminfo(body: bytes) -> bytes:
    # §8.2: 34 bytes; a zero sample rate is invalid for audio and min block size >= 16.
    if len(body) != 34:
        raise StripError(f"STREAMINFO is {len(body)} bytes long, not 34")
    rate = int.from_bytes(body[10:13], "big") >> 4
    if rate == 0 or int.from_bytes(body[0:2], "big") < 16:
        raise StripError("STREAMINFO with a zero sample rate or a block size under 16")
    return body


def _total_samples(streaminfo: bytes) -> int:
    return int.from_bytes(streaminfo[13:18], "big") & ((1 << 36) - 1)


def _header(kind: int, length: int, last: bool) -> bytes:
    return bytes([kind | (_LAST if last else 0)]) + length.to_bytes(3, "big")


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    size = source_size(source)
    start = skip_leading_id3v2(source, 0, size, removed)  # some taggers put ID3v2 before FLAC
    if size - start < 4 or read_at(source, start, 4, "FLAC signature") != b"fLaC":
        raise StripError("no fLaC signature")
    blocks, frames_start = _read_blocks(source, start + 4, size)
    removed += blocks.removed
    frames_end = strip_trailing_tags(source, frames_start, size, removed)
    if frames_end <= frames_start:
        raise StripError("FLAC file without frames")
    samples = check_frames(source, frames_start, frames_end)
    total = _total_samples(blocks.streaminfo)
    if total and total != samples:  # §8.2: 0 means "unknown"
        raise StripError(f"frames hold {samples} samples, STREAMINFO says {total}")
    seek = blocks.seektable
    pieces: list[Piece] = [b"fLaC", _header(_STREAMINFO, 34, seek is None), blocks.streaminfo]
    if seek is not None:
        pieces += [_header(_SEEKTABLE, seek.length, True), seek]
    pieces.append(Span(frames_start, frames_end - frames_start, content=True))
    return Plan(tuple(removed), pieces)


class FlacStripper(PlannedStripper):
    """Keeps STREAMINFO (with the audio's MD5), SEEKTABLE and the frames byte for byte."""

    name = "flac"
    version = "1"
    media_types = frozenset({"audio/flac"})
    content_kind = "flac-frames"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
