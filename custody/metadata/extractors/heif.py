"""The Exif item of a HEIF file (ISO/IEC 23008-12 §A.2.1), found through iinf and iloc.

exifread locates the item itself but drops the iloc base_offset (ISO/IEC 14496-12
§8.11.3): in files whose writer puts the item's position there with extent offsets of
zero, as libheif does (and so GIMP, ImageMagick and Android apps built on it), it read the
file's first bytes instead, stopped on an assertion, and the photo's GPS position went
unwarned. Here the item is located by the boxes, its 4-byte exif_tiff_header_offset
skipped (Apple and libheif both put "Exif\0\0" there), and the TIFF block handed to the
EXIF reader as a TIFF stream.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from custody.metadata.extractors.collector import Collector, LimitError
from custody.metadata.extractors.exif import TIFF_MAGIC, extract_exif
from custody.metadata.extractors.quicktime import Walker

MAX_EXIF_ITEM = 4 * 1024 * 1024  # camera Exif blocks are at most 64 KiB (APP1); maker notes
_FILE, _IDAT = 0, 1  # iloc construction methods (ISO/IEC 14496-12 §8.11.3)


class HeifError(ValueError):
    """The boxes that locate the Exif item are not as the standard lays them out."""


def extract_heif_exif(fh: BinaryIO, out: Collector) -> None:
    """EXIF fields of the file's Exif item, as `extract_exif` names them."""
    block = exif_block(fh, out.limits.max_chunks)
    if block is not None:
        extract_exif(io.BytesIO(block), out)


def exif_block(fh: BinaryIO, max_boxes: int) -> bytes | None:
    """The TIFF block of the Exif item (None if the file has none)."""
    walker = Walker(fh, max_boxes)
    end = fh.seek(0, io.SEEK_END)
    meta = next(((s, e) for kind, s, e in walker.boxes(0, end) if kind == b"meta"), None)
    if meta is None:
        return None
    boxes = {kind: (s, e) for kind, s, e in walker.boxes(meta[0] + 4, meta[1])}  # full box
    if b"iinf" not in boxes or b"iloc" not in boxes:
        return None
    item = _exif_item(walker, *boxes[b"iinf"])
    if item is None:
        return None
    payload = _item_data(walker, item, boxes[b"iloc"], boxes.get(b"idat"))
    if len(payload) < 4:
        raise HeifError("the Exif item is shorter than its header offset")
    skip = int.from_bytes(payload[:4], "big")
    block = payload[4 + skip :]
    if block[:4] not in TIFF_MAGIC:
        raise HeifError("the Exif item's offset does not lead to a TIFF header")
    return block


def _exif_item(walker: Walker, start: int, end: int) -> int | None:
    """The item_ID of the first item of type 'Exif' (iinf, then infe version 2 or 3)."""
    version = walker.read(start, start + 1)[:1]
    entries = start + 4 + (2 if version == b"\x00" else 4)
    for kind, s, e in walker.boxes(entries, end):
        if kind != b"infe":
            continue
        head = walker.read(s, min(e, s + 16))
        if len(head) < 4 or head[0] < 2:
            continue  # versions 0 and 1 have no item_type
        id_size = 2 if head[0] == 2 else 4
        item_type = head[4 + id_size + 2 : 4 + id_size + 6]
        if item_type == b"Exif":
            return int.from_bytes(head[4 : 4 + id_size], "big")
    return None


def _item_data(
    walker: Walker, item: int, iloc: tuple[int, int], idat: tuple[int, int] | None
) -> bytes:
    """The item's bytes, its extents joined (§8.11.3), at most MAX_EXIF_ITEM."""
    data = walker.read(iloc[0], iloc[1], limit=iloc[1] - iloc[0])
    reader = _Fields(data)
    version = reader.int(1)
    reader.int(3)  # flags
    sizes = reader.int(2)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 0xF
    base_size, index_size = (sizes >> 4) & 0xF, sizes & 0xF if version in (1, 2) else 0
    for _ in range(reader.int(2 if version < 2 else 4)):
        item_id = reader.int(2 if version < 2 else 4)
        method = reader.int(2) & 0xF if version in (1, 2) else _FILE
        reader.int(2)  # data_reference_index: 0, this file
        base = reader.int(base_size)
        extents = []
        for _ in range(reader.int(2)):
            reader.int(index_size)
            extents.append((base + reader.int(offset_size), reader.int(length_size)))
        if item_id == item:
            return _join(walker, method, extents, idat)
    raise HeifError(f"iloc has no location for item {item}")


def _join(
    walker: Walker, method: int, extents: list[tuple[int, int]], idat: tuple[int, int] | None
) -> bytes:
    if method not in (_FILE, _IDAT) or (method == _IDAT and idat is None):
        raise HeifError(f"the Exif item is stored by construction method {method}")
    origin = idat[0] if method == _IDAT and idat is not None else 0
    total = sum(length for _, length in extents)
    if total > MAX_EXIF_ITEM:
        raise LimitError(f"an Exif item of {total} bytes")
    parts = [walker.read(origin + s, origin + s + n, limit=n) for s, n in extents]
    return b"".join(parts)


class _Fields:
    """Big-endian integers of the given byte sizes, read in turn from a box's payload."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def int(self, size: int) -> int:
        if size == 0:
            return 0
        if self._at + size > len(self._data):
            raise HeifError("iloc is cut short")
        value = int.from_bytes(self._data[self._at : self._at + size], "big")
        self._at += size
        return value
