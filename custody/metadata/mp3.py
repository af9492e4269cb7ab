"""MP3 sharing copies: the MPEG audio frames (ISO/IEC 11172-3, 13818-3) without ID3/APE/Lyrics3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from custody.metadata.audio_common import Plan, PlannedStripper, Span, read_at, source_size
from custody.metadata.audio_tags import (
    skip_forward_tags,
    skip_leading_id3v2,
    strip_trailing_tags,
)
from custody.metadata.base import StripError

# Bit rates in kbit/s by bitrate_index 1-14 (11172-3 §2.4.2.3; 13818-3 §2.4.2.3 for the LSF
# versions, whose Layer II and III tables are the same).
_BITRATES: dict[tuple[bool, int], tuple[int, ...]] = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sampling rates in Hz by version bits (3: MPEG-1, 2: MPEG-2, 0: the unofficial MPEG-2.5).
_SAMPLE_RATES: dict[int, tuple[int, int, int]] = {
    3: (44100, 48000, 32000),
    2: (22050, 24000, 16000),
    0: (11025, 12000, 8000),
}
_WINDOW = 64 * 1024  # frame headers are read through a window, not one seek per frame
# The start of an ID3v1, ID3v2 (header and footer), APEv2 or Lyrics3 tag.
_TAG_SIGNATURES = (b"TAG", b"ID3", b"3DI", b"APETAGEX", b"LYRICSBEGIN")


@dataclass(frozen=True, slots=True)
class _Frame:
    stream: tuple[int, int, int]  # version, layer, sampling rate index: fixed for a stream
    length: int


def _parse_header(header: bytes) -> _Frame | None:
    """The frame whose 4-byte header this is, or None (free format has no length: refused)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, 4 - ((header[1] >> 1) & 3)
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    if header[3] & 3 == 2:  # reserved emphasis
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding
    return _Frame((version, layer, rate_index), length)


class _Window:
    """Positional reads of a few bytes through one buffered window of the source."""

    def __init__(self, source: BinaryIO, end: int) -> None:
        self._source, self._end = source, end
        self._start, self._data = 0, b""

    def get(self, position: int, length: int) -> bytes:
        if not self._start <= position <= self._start + len(self._data) - length:
            size = min(_WINDOW, self._end - position)
            self._data = read_at(self._source, position, size, "MPEG audio") if size > 0 else b""
            self._start = position
        return self._data[position - self._start : position - self._start + length]


def _walk_frames(source: BinaryIO, start: int, end: int) -> tuple[int, int | None]:
    """Where the chain of frames from `start` stops, and where its last frame starts if
    that frame is cut short (it runs past `end`)."""
    window = _Window(source, end)
    first = _parse_header(window.get(start, 4))
    if first is None:
        raise StripError(f"no MPEG audio frame at offset {start}")
    position = start
    frame: _Frame | None = first
    while frame is not None and frame.stream == first.stream:
        if position + frame.length > end:
            return end, position
        position += frame.length
        frame = _parse_header(window.get(position, 4)) if end - position >= 4 else None
    return position, None


def _check_cut_frame(source: BinaryIO, start: int, end: int) -> None:
    """A frame cut short holds what the file's damage left there: a damaged tag in it (an
    ID3v1 tag not at the very end, say) is not audio, but would be copied as audio."""
    data = read_at(source, start + 4, end - start - 4, "MPEG audio")
    if any(signature in data for signature in _TAG_SIGNATURES):
        raise StripError("the last MPEG frame is cut short and holds a tag")


def _skip_zero_padding(source: BinaryIO, start: int, end: int) -> int:
    # Taggers pad past the declared ID3v2 size with zeros; those hold nothing, so they go.
    while start < end:
        block = read_at(source, start, min(_WINDOW, end - start), "padding")
        stripped = block.lstrip(b"\x00")
        start += len(block) - len(stripped)
        if stripped:
            break
    return start


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    size = source_size(source)
    start = _skip_zero_padding(source, skip_leading_id3v2(source, 0, size, removed), size)
    if read_at(source, start, 4, "MPEG audio") == b"fLaC":
        raise StripError("FLAC behind an ID3v2 tag is FLAC, not MP3")
    end = strip_trailing_tags(source, start, size, removed)
    frames_end, cut_from = _walk_frames(source, start, end)
    tags_end = skip_forward_tags(source, frames_end, end, removed)
    if tags_end != end:
        raise StripError(
            f"{end - frames_end} bytes after the MPEG frames are neither audio nor tags"
        )
    if cut_from is not None and end != size:
        # A cut-short last frame running into a trailing tag could as well be a frame whose
        # bytes merely look like a tag: which bytes are audio is not certain.
        raise StripError("the last MPEG frame overlaps a trailing tag")
    if cut_from is not None:
        _check_cut_frame(source, cut_from, end)
    return Plan(tuple(removed), [Span(start, frames_end - start, content=True)])


class Mp3Stripper(PlannedStripper):
    """Keeps the MPEG frames from the first sync to the last, including Xing/Info/LAME/VBRI."""

    name = "mp3"
    version = "1"
    media_types = frozenset({"audio/mpeg"})
    content_kind = "mpeg-audio-frames"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
