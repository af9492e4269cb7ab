"""ISO BMFF (ISO/IEC 14496-12): QuickTime user data and mdta keys (where phones put location),
and HEIF thumbnail items."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from custody.metadata.extractors.collector import Collector, LimitError

_MAX_ATOM = 64 * 1024  # user-data atoms are short text; larger ones are media, not metadata
# 3GPP TS 26.244 §8: user-data boxes whose payload is a full box, a language and a string.
_3GPP_TEXT = frozenset({b"auth", b"cprt", b"titl", b"dscp", b"perf", b"albm", b"gnre"})
_UTF8, _UTF16 = 1, 2  # QuickTime File Format, "Well-known types" of a 'data' atom


class Walker:
    """Box headers read by seeking, so that media data (mdat) is never read."""

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self.fh = fh
        self.left = limit

    def boxes(self, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        """Type, payload start and payload end of each box in [start, end) (§4.2)."""
        while start + 8 <= end:
            self.left -= 1
            if self.left < 0:
                raise LimitError("too many ISO BMFF boxes")
            self.fh.seek(start)
            header = self.fh.read(16)
            size, kind, skip = int.from_bytes(header[:4], "big"), header[4:8], 8
            if size == 1:  # a 64-bit largesize follows the type
                size, skip = int.from_bytes(header[8:16], "big"), 16
            elif size == 0:  # the box runs to the end of its container
                size = end - start
            if size < skip or len(header) < 8:
                return
            yield kind, start + skip, min(start + size, end)
            start += size

    def read(self, start: int, end: int, *, limit: int = _MAX_ATOM) -> bytes:
        self.fh.seek(start)
        return self.fh.read(max(0, min(end - start, limit)))


def extract_quicktime(fh: BinaryIO, out: Collector) -> None:
    """moov/udta atoms ("QuickTime:udta/©xyz") and moov/meta mdta keys ("QuickTime:keys/…")."""
    walker = Walker(fh, out.limits.max_chunks)
    end = fh.seek(0, io.SEEK_END)
    for kind, start, stop in walker.boxes(0, end):
        if kind == b"meta":  # HEIF's file-level meta box (ISO/IEC 23008-12 §6.2)
            _heif_thumbnails(walker, start + 4, stop, out)
        if kind == b"moov":
            for child, child_start, child_stop in walker.boxes(start, stop):
                if child == b"udta":
                    _udta(walker, child_start, child_stop, out)
                elif child == b"meta":
                    _mdta(walker, child_start, child_stop, out)


def _heif_thumbnails(walker: Walker, start: int, end: int, out: Collector) -> None:
    """Items that are thumbnails of others: 'thmb' references in 'iref' (23008-12 §6.4.6)."""
    for kind, child_start, child_stop in walker.boxes(start, end):
        if kind == b"iref":  # a full box, then one box per reference
            found = sum(ref == b"thmb" for ref, _, _ in walker.boxes(child_start + 4, child_stop))
            if found:
                out.add("HEIF:iref/thmb", f"{found} thumbnail item(s)", literal=False)


def _udta(walker: Walker, start: int, end: int, out: Collector) -> None:
    for kind, child_start, child_stop in walker.boxes(start, end):
        if child_stop - child_start > _MAX_ATOM:
            continue
        name = f"QuickTime:udta/{kind.decode('latin-1')}"
        payload = walker.read(child_start, child_stop)
        if kind[:1] == b"\xa9":  # QuickTime international text: length, language, text
            length = int.from_bytes(payload[:2], "big")
            out.add(name, payload[4 : 4 + length].decode("utf-8", "replace"))
        elif kind in _3GPP_TEXT:
            out.add(name, _string(payload[6:]))
        elif kind == b"loci":
            out.add(name, _location(payload))


def _location(payload: bytes) -> str:
    """3GPP TS 26.244 §8.9 'loci': place name, role, then 16.16 fixed-point coordinates."""
    name, _, rest = payload[6:].partition(b"\x00")
    longitude, latitude, altitude = (
        int.from_bytes(rest[i : i + 4], "big", signed=True) / 65536 for i in (1, 5, 9)
    )
    return f"{name.decode('utf-8', 'replace')} {latitude:+.6f} {longitude:+.6f} {altitude:+.1f}"


def _mdta(walker: Walker, start: int, end: int, out: Collector) -> None:
    """Keys (1-based) and the ilst items that use them (QuickTime File Format, "Metadata")."""
    first = walker.read(start, min(end, start + 8))
    if first[4:8] != b"hdlr":  # ISO meta is a full box; QuickTime's is not
        start += 4
    keys: list[str] = []
    for kind, child_start, child_stop in walker.boxes(start, end):
        if kind == b"keys":
            keys = _keys(walker.read(child_start, child_stop))
        elif kind == b"ilst":
            for index, item_start, item_stop in walker.boxes(child_start, child_stop):
                number = int.from_bytes(index, "big")
                if 0 < number <= len(keys):
                    _item(walker, f"QuickTime:keys/{keys[number - 1]}", item_start, item_stop, out)


def _keys(payload: bytes) -> list[str]:
    count, at, keys = int.from_bytes(payload[4:8], "big"), 8, []
    for _ in range(min(count, 10_000)):
        size = int.from_bytes(payload[at : at + 4], "big")
        if size < 8:
            break
        keys.append(payload[at + 8 : at + size].decode("utf-8", "replace"))
        at += size
    return keys


def _item(walker: Walker, name: str, start: int, end: int, out: Collector) -> None:
    for kind, data_start, data_stop in walker.boxes(start, end):
        if kind != b"data":
            continue
        payload = walker.read(data_start, data_stop)
        value_type = int.from_bytes(payload[1:4], "big")
        if value_type == _UTF8:
            out.add(name, payload[8:].decode("utf-8", "replace"))
        elif value_type == _UTF16:
            out.add(name, payload[8:].decode("utf-16-be", "replace"))
        else:
            out.add(name, payload[8:], literal=False)


def _string(data: bytes) -> str:
    if data[:2] in (b"\xfe\xff", b"\xff\xfe"):  # 3GPP strings may be UTF-16 with a BOM
        return data.decode("utf-16", "replace").rstrip("\x00")
    return data.split(b"\x00", 1)[0].decode("utf-8", "replace")
