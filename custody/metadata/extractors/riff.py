"""RIFF and IFF chunks: WAVE LIST INFO and BWF bext, AIFF text chunks, WebP EXIF and XMP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO, Literal

from custody.metadata.extractors import exif, xmp
from custody.metadata.extractors.collector import Collector, LimitError

_Order = Literal["little", "big"]
_MAX_TEXT = 64 * 1024  # metadata chunks are short; audio data chunks are skipped by seeking
# EBU Tech 3285 (Broadcast Wave Format) §2.3: the bext chunk's fixed-width ASCII fields.
_BEXT = (
    ("Description", 256),
    ("Originator", 32),
    ("OriginatorReference", 32),  # recorders put their serial number and the date here
    ("OriginationDate", 10),
    ("OriginationTime", 8),
)
_AIFF_TEXT = frozenset({b"NAME", b"AUTH", b"(c) ", b"ANNO"})  # AIFF 1.3 §"Text chunks"


def extract_riff(fh: BinaryIO, out: Collector) -> None:
    """RIFF LIST sub-chunks as "RIFF:<list type>/<id>", bext fields as "RIFF:bext/<field>"."""
    header = fh.read(12)
    if header[:4] == b"RIFF":
        for chunk_id, data in _chunks(fh, "little", out.limits.max_chunks):
            if chunk_id == b"LIST" and len(data) >= 4:
                _list(data, out)
            elif chunk_id == b"bext":
                _bext(data, out)
    elif header[:4] == b"FORM":
        for chunk_id, data in _chunks(fh, "big", out.limits.max_chunks):
            if chunk_id in _AIFF_TEXT:
                out.add(f"AIFF:{chunk_id.decode().strip()}", _text(data))


def extract_webp(fh: BinaryIO, out: Collector) -> None:
    """WebP (RFC 9649 §2.7): the EXIF chunk (a TIFF header) and the XMP chunk."""
    if fh.read(12)[8:] != b"WEBP":
        return
    limits = out.limits
    for chunk_id, data in _chunks(fh, "little", limits.max_chunks, limits.xmp_packet):
        if chunk_id == b"EXIF":  # some writers keep JPEG's "Exif\0\0" prefix (RFC 9649 §2.7.1.3)
            tiff = out.reader(data.removeprefix(b"Exif\x00\x00"))
            out.guard("exif", partial(exif.extract_exif, tiff, out))
        elif chunk_id == b"XMP ":
            out.guard("xmp", partial(xmp.parse_packet, data, out))


def _chunks(
    fh: BinaryIO, order: _Order, max_chunks: int, max_size: int = _MAX_TEXT
) -> Iterator[tuple[bytes, bytes]]:
    """(id, data) of each top-level chunk up to `max_size` bytes; others are skipped."""
    for _ in range(max_chunks):
        header = fh.read(8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:], order)
        if size <= max_size:
            yield header[:4], fh.read(size)
            fh.seek(size % 2, io.SEEK_CUR)  # chunks are padded to even sizes
        else:
            fh.seek(size + size % 2, io.SEEK_CUR)
    raise LimitError(f"more than {max_chunks} chunks")


def _list(data: bytes, out: Collector) -> None:
    """A LIST chunk (RIFF 1991 §2-14): its type, then sub-chunks of NUL-terminated text."""
    list_type, at = data[:4].decode("latin-1").strip(), 4
    while at + 8 <= len(data):
        sub_id, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        out.add(f"RIFF:{list_type}/{sub_id.decode('latin-1')}", _text(data[at + 8 : at + 8 + size]))
        at += 8 + size + size % 2


def _bext(data: bytes, out: Collector) -> None:
    at = 0
    for name, width in _BEXT:
        text = _text(data[at : at + width])
        if text:
            out.add(f"RIFF:bext/{name}", text)
        at += width


def _text(data: bytes) -> str:
    text = data.split(b"\x00", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("latin-1")
