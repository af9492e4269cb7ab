"""Locating (never reading) ID3v2.2-2.4, ID3v1, APEv1/v2 and Lyrics3 v1/v2 tags around audio."""

from __future__ import annotations

from typing import BinaryIO

from custody.metadata.audio_common import read_at
from custody.metadata.base import StripError

_LYRICS3V1_MAX = 5100  # Lyrics3 v1: at most 5100 bytes of lyrics between the markers
_APE_HEADER_FLAG = 1 << 31  # APEv2 tag flags: "contains a header"


def _syncsafe(data: bytes) -> int:
    """An ID3v2 28-bit size: four bytes of seven bits each (ID3v2.4 structure §6.2)."""
    if any(b & 0x80 for b in data):
        raise StripError("ID3v2 tag size is not a syncsafe integer")
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def id3v2_length(header: bytes) -> int | None:
    """The whole length of the ID3v2 tag whose 10-byte header this is, or None if it is not one.

    ID3v2.4 §3.1: "ID3", major version 2-4, revision, flags, syncsafe size of the rest; a footer
    (flag bit 4, v2.4 only) adds ten bytes.
    """
    if header[:3] != b"ID3":
        return None
    if header[3] not in (2, 3, 4) or header[4] == 0xFF:
        raise StripError(f"ID3v2 tag of unknown version 2.{header[3]}.{header[4]}")
    footer = 10 if header[3] == 4 and header[5] & 0x10 else 0
    return 10 + _syncsafe(header[6:10]) + footer


def skip_leading_id3v2(source: BinaryIO, start: int, end: int, removed: list[str]) -> int:
    """Where the data after the ID3v2 tags at `start` begins (taggers may stack several)."""
    while end - start >= 10:
        header = read_at(source, start, 10, "ID3v2 header")
        length = id3v2_length(header)
        if length is None:
            break
        if start + length > end:
            raise StripError("ID3v2 tag runs past the end of the file")
        removed.append(f"ID3v2.{header[3]}")
        start += length
    return start


def skip_forward_tags(source: BinaryIO, start: int, end: int, removed: list[str]) -> int:
    """Skip ID3v2 and header-first APEv2 tags written after the audio (Audacious, foobar2000)."""
    while end - start >= 10:
        head = read_at(source, start, min(32, end - start), "tag header")
        if head[:8] == b"APETAGEX" and len(head) == 32:
            size = int.from_bytes(head[12:16], "little")
            if not int.from_bytes(head[20:24], "little") & _APE_HEADER_FLAG:
                raise StripError("APE tag header without its header flag")
            start += 32 + size
            removed.append("APEv2")
            continue
        length = id3v2_length(head[:10])
        if length is None:
            break
        removed.append(f"ID3v2.{head[3]}")
        start += length
    if start > end:
        raise StripError("tag after the audio runs past the end of the file")
    return start


def strip_trailing_tags(source: BinaryIO, start: int, end: int, removed: list[str]) -> int:
    """Where the audio ends once the tags at the file's end are peeled off, last first.

    Taggers append ID3v1 (last 128 bytes), Lyrics3 and APE tags before it, and ID3v2.4 with a
    footer; each step shrinks `end`, so the loop ends.
    """
    while True:
        tail = read_at(source, max(start, end - 32), min(32, end - start), "file end")
        found = _peel_one(source, start, end, tail)
        if found is None:
            return end
        name, end = found
        removed.append(name)


def _peel_one(source: BinaryIO, start: int, end: int, tail: bytes) -> tuple[str, int] | None:
    if end - start >= 128 and read_at(source, end - 128, 3, "ID3v1 tag") == b"TAG":
        return "ID3v1", end - 128
    if tail.endswith(b"LYRICS200") and len(tail) >= 15:
        return "Lyrics3v2", _lyrics3v2_start(source, start, end, tail[-15:-9])
    if tail.endswith(b"LYRICSEND"):
        return "Lyrics3v1", _lyrics3v1_start(source, start, end)
    if len(tail) == 32 and tail.startswith(b"APETAGEX"):
        return "APEv2", _ape_start(source, start, end, tail)
    if len(tail) >= 10 and tail[-10:-7] == b"3DI":
        return "ID3v2.4", _id3v2_footer_start(source, start, end, tail[-10:])
    return None


def _lyrics3v2_start(source: BinaryIO, start: int, end: int, digits: bytes) -> int:
    # Lyrics3 v2: "LYRICSBEGIN" fields, then the six-digit size of all that, then "LYRICS200".
    if not digits.isdigit():
        raise StripError("Lyrics3v2 size is not six digits")
    begin = end - 15 - int(digits)
    if begin < start or read_at(source, begin, 11, "Lyrics3v2") != b"LYRICSBEGIN":
        raise StripError("Lyrics3v2 tag without its LYRICSBEGIN marker")
    return begin


def _lyrics3v1_start(source: BinaryIO, start: int, end: int) -> int:
    window_start = max(start, end - 9 - _LYRICS3V1_MAX - 11)
    window = read_at(source, window_start, end - 9 - window_start, "Lyrics3v1")
    at = window.rfind(b"LYRICSBEGIN")
    if at < 0:
        raise StripError("Lyrics3v1 tag without its LYRICSBEGIN marker")
    return window_start + at


def _ape_start(source: BinaryIO, start: int, end: int, footer: bytes) -> int:
    # APEv2 footer: "APETAGEX", version, size of items + footer, item count, flags, reserved.
    size = int.from_bytes(footer[12:16], "little")
    has_header = bool(int.from_bytes(footer[20:24], "little") & _APE_HEADER_FLAG)
    begin = end - size - (32 if has_header else 0)
    if size < 32 or begin < start:
        raise StripError("APE tag size runs past the start of the file")
    if has_header and read_at(source, begin, 8, "APE tag header") != b"APETAGEX":
        raise StripError("APE tag without the header its footer announces")
    return begin


def _id3v2_footer_start(source: BinaryIO, start: int, end: int, footer: bytes) -> int:
    # ID3v2.4 §3.4: the footer repeats the header with "3DI"; the tag is size + 20 bytes long.
    begin = end - 20 - _syncsafe(footer[6:10])
    if begin < start or read_at(source, begin, 3, "ID3v2 header") != b"ID3":
        raise StripError("ID3v2 footer without its header")
    return begin
