"""Ogg pages (RFC 3533 §6): reading and checking one, writing one, and packets into pages."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import BinaryIO

from custody.metadata.audio_common import read_at
from custody.metadata.base import StripError

_HEADER = 27  # capture pattern to segment count (§6)
CONTINUED, FIRST, LAST = 0x01, 0x02, 0x04  # header_type flags: continued packet, BOS, EOS
NO_GRANULE = b"\xff" * 8  # -1: no packet ends on this page
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04c11db7, MSB first, initial value 0, no final XOR.

    That is zlib's reflected CRC-32 of the bit-reversed bytes, reflected back, so every page
    is checked and re-sealed at C speed.
    """
    reflected = zlib.crc32(data.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    flags: int
    granule: bytes
    serial: int
    sequence: int
    lacing: bytes
    body: bytes

    @property
    def length(self) -> int:
        return _HEADER + len(self.lacing) + len(self.body)

    @property
    def body_offset(self) -> int:
        return self.offset + _HEADER + len(self.lacing)


def read_page(source: BinaryIO, offset: int, end: int) -> Page:
    """The page at `offset`, which must lie before `end` and carry a correct CRC."""
    if end - offset < _HEADER:
        raise StripError(f"{end - offset} stray bytes after the last Ogg page")
    header = read_at(source, offset, _HEADER, "Ogg page header")
    if header[:4] != b"OggS" or header[4] != 0:
        raise StripError(f"no Ogg page (version 0) at offset {offset}")
    lacing = read_at(source, offset + _HEADER, header[26], "Ogg lacing values")
    body_start = offset + _HEADER + len(lacing)
    if body_start + sum(lacing) > end:
        raise StripError(f"Ogg page at offset {offset} runs past the end of the file")
    body = read_at(source, body_start, sum(lacing), "Ogg page body")
    crc = int.from_bytes(header[22:26], "little")
    if ogg_crc(header[:22] + b"\0\0\0\0" + header[26:] + lacing + body) != crc:
        raise StripError(f"Ogg page at offset {offset} fails its CRC")
    return Page(
        offset=offset,
        flags=header[5],
        granule=header[6:14],
        serial=int.from_bytes(header[14:18], "little"),
        sequence=int.from_bytes(header[18:22], "little"),
        lacing=lacing,
        body=body,
    )


def page_header(page: Page, sequence: int) -> bytes:
    """`page`'s header, renumbered to `sequence` and re-sealed with the CRC of the whole page."""
    return _seal(page.flags, page.granule, page.serial, sequence, page.lacing, page.body)[
        : _HEADER + len(page.lacing)
    ]


def _seal(
    flags: int, granule: bytes, serial: int, sequence: int, lacing: bytes, body: bytes
) -> bytes:
    head = b"OggS\0" + bytes([flags]) + granule + serial.to_bytes(4, "little")
    head += (sequence & 0xFFFFFFFF).to_bytes(4, "little")
    rest = bytes([len(lacing)]) + lacing + body
    crc = ogg_crc(head + b"\0\0\0\0" + rest)
    return head + crc.to_bytes(4, "little") + rest


def paginate(packets: list[bytes], serial: int, sequence: int, *, first: bool) -> list[bytes]:
    """Pages holding `packets` from a fresh page on, the last page ending with the last packet.

    §6: a packet is cut in 255-byte segments and ends with a segment shorter than 255 (a
    zero-length one if need be); a page holds at most 255 segments.
    """
    segments: list[tuple[bytes, bool]] = []
    for packet in packets:
        parts = [packet[i : i + 255] for i in range(0, len(packet), 255)]
        if len(packet) % 255 == 0:
            parts.append(b"")
        segments += [(part, i == len(parts) - 1) for i, part in enumerate(parts)]
    pages, continued = [], False
    for at in range(0, len(segments), 255):
        chunk = segments[at : at + 255]
        flags = (FIRST if first and at == 0 else 0) | (CONTINUED if continued else 0)
        granule = bytes(8) if any(ends for _, ends in chunk) else NO_GRANULE
        lacing = bytes(len(part) for part, _ in chunk)
        body = b"".join(part for part, _ in chunk)
        pages.append(_seal(flags, granule, serial, sequence, lacing, body))
        continued, sequence = not chunk[-1][1], sequence + 1
    return pages
