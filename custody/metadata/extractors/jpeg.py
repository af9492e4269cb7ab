"""JPEG (ITU-T T.81) marker segments: APPn names, COM text, XMP, Photoshop IRB/IPTC."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO

from custody.metadata.extractors import exif, iptc, xmp
from custody.metadata.extractors.collector import Collector, LimitError

_SOI, _EOI, _SOS, _COM = 0xD8, 0xD9, 0xDA, 0xFE
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length follows (B.1.1.3)
_MAX_FILL = 64  # 0xFF fill bytes before a marker (B.1.1.2); real encoders write one or two
_IDENTIFIER = re.compile(rb"[\x20-\x7e]{1,40}")
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
# XMP Specification Part 3 §1.1.3.1: packets above 64 KiB continue in APP1 segments with
# this signature, a 32-byte GUID, the full length and this chunk's offset (4 bytes each).
_EXTENDED_XMP = b"http://ns.adobe.com/xmp/extension/\x00"
_EXIF = b"Exif\x00\x00"
_PHOTOSHOP = b"Photoshop 3.0\x00"
_MAX_PARSED = 16  # segments of one name whose content is parsed (ICC, Exif... repeat a few)
_APP12, _DUCKY = 0xEC, b"Ducky"
_DUCKY_TEXT = {2: "Comment", 3: "Copyright"}  # each a 4-byte length, then UTF-16BE


def extract_jpeg(fh: BinaryIO, out: Collector) -> None:
    """Segment names and sizes ("JPEG:APP2/MPF"), comments, and the metadata they carry."""
    totals: dict[str, list[int]] = {}  # name -> [segments, bytes]
    extended: dict[bytes, dict[int, bytes]] = {}  # GUID -> offset -> chunk
    exif_blocks = 0
    for marker, payload in _segments(fh, out.limits.max_chunks):
        if marker == _COM:
            out.add("JPEG:COM", payload.decode("utf-8", "replace"))
            continue
        found = _IDENTIFIER.match(payload)
        name = f"JPEG:APP{marker - 0xE0}/{found.group().decode() if found else ''}"
        totals.setdefault(name, [0, 0])
        totals[name][0] += 1
        totals[name][1] += len(payload)
        if totals[name][0] > _MAX_PARSED and not payload.startswith(_EXTENDED_XMP):
            continue  # thousands of copies of one block would only cost time
        if payload.startswith(_XMP):
            out.guard("xmp", partial(xmp.parse_packet, payload[len(_XMP) :], out))
        elif payload.startswith(_EXTENDED_XMP) and len(payload) >= len(_EXTENDED_XMP) + 40:
            body = payload[len(_EXTENDED_XMP) :]
            extended.setdefault(body[:32], {})[int.from_bytes(body[36:40], "big")] = body[40:]
        elif marker == _APP12:
            out.guard("jpeg", partial(_app12, payload, out))
        elif payload.startswith(_PHOTOSHOP):
            out.guard("iptc", partial(iptc.parse_irb, payload[len(_PHOTOSHOP) :], out))
        elif payload.startswith(_EXIF):
            # exifread reads only the first Exif segment; a second one can hold GPS too.
            if exif_blocks:
                tiff = out.reader(payload[len(_EXIF) :])
                out.guard("exif", partial(exif.extract_exif, tiff, out))
            exif_blocks += 1
    for name, (count, size) in totals.items():
        out.add(name, f"{count} segment(s), {size} bytes", literal=False)
    for chunks in extended.values():
        out.guard("xmp", partial(_extended_xmp, chunks, out))


def _app12(payload: bytes, out: Collector) -> None:
    """APP12: Olympus/Agfa "[picture info]" text (serial, time), or Photoshop's "Ducky"."""
    if payload.startswith(_DUCKY):
        at = len(_DUCKY)
        while at + 4 <= len(payload):  # tag, length, data; 2 and 3 are UTF-16 text
            tag, size = (
                int.from_bytes(payload[at : at + 2]),
                int.from_bytes(payload[at + 2 : at + 4]),
            )
            if tag in _DUCKY_TEXT:
                text = payload[at + 8 : at + 4 + size].decode("utf-16-be", "replace")
                out.add(f"JPEG:APP12/Ducky/{_DUCKY_TEXT[tag]}", text.rstrip("\x00"))
            at += 4 + size
        return
    text = payload.split(b"\xff", 1)[0].decode("latin-1")
    if "[picture info]" in text:
        for key, _, value in (line.partition("=") for line in text.splitlines() if "=" in line):
            out.add(f"JPEG:APP12/{key.strip()}", value.strip().rstrip("\x00"))


def _extended_xmp(chunks: dict[int, bytes], out: Collector) -> None:
    packet = b"".join(chunks[offset] for offset in sorted(chunks))
    xmp.parse_packet(packet, out)


def _segments(fh: BinaryIO, max_segments: int) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each APPn and COM segment before the first scan (B.2.4, B.2.2)."""
    if fh.read(2) != bytes((0xFF, _SOI)):
        return
    for _ in range(max_segments):
        marker = _next_marker(fh)
        if marker is None or marker in (_EOI, _SOS):
            return
        if marker in _STANDALONE:
            continue
        length = int.from_bytes(fh.read(2), "big")
        if length < 2:
            return
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            yield marker, fh.read(length - 2)
        else:
            fh.seek(length - 2, io.SEEK_CUR)
    raise LimitError(f"more than {max_segments} JPEG segments")


def _next_marker(fh: BinaryIO) -> int | None:
    if fh.read(1) != b"\xff":
        return None
    for _ in range(_MAX_FILL):
        code = fh.read(1)
        if code != b"\xff":
            return code[0] if code else None
    return None
