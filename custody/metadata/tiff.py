"""TIFF sharing copies (TIFF 6.0): the main IFD chain rewritten with an allowlist of image tags."""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from itertools import accumulate
from operator import attrgetter
from typing import BinaryIO

from custody.metadata import jpeg
from custody.metadata.base import StripError, StripReport
from custody.metadata.binary import Emit, Slice, copy_at, overlaps, read_at, source_size, unique

# TIFF 6.0 §2 field types -> bytes per value (13 = IFD, from TIFF Tech Note 1).
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SHORT, _LONG, _IFD = 3, 4, 13
_S, _L, _R, _U = frozenset({3}), frozenset({4}), frozenset({5}), frozenset({1, 7})
# The tags kept: they say how to decode and show the pixels, with the TIFF 6.0 field types
# and counts (0: any, checked below). No ASCII tag is kept, so no free text survives, and a
# damaged tag number cannot pass a string or an Exif block off as an image tag.
_KEEP: dict[int, tuple[frozenset[int], int]] = {
    254: (_S | _L, 1), 256: (_S | _L, 1), 257: (_S | _L, 1), 258: (_S, 0), 259: (_S, 1),
    262: (_S, 1), 266: (_S, 1), 274: (_S, 1), 277: (_S, 1), 278: (_S | _L, 1), 282: (_R, 1),
    283: (_R, 1), 284: (_S, 1), 292: (_L, 1), 293: (_L, 1), 296: (_S, 1), 297: (_S, 2),
    301: (_S, 0), 317: (_S, 1), 318: (_R, 2), 319: (_R, 6), 320: (_S, 0), 322: (_S | _L, 1),
    323: (_S | _L, 1), 338: (_S, 0), 339: (_S, 0),
    347: (_U, 0),  # JPEGTables (TIFF Tech Note 2), checked to hold tables only
    529: (_R, 3), 530: (_S, 2), 531: (_S, 1), 532: (_R, 6),  # YCbCr (TIFF 6.0 §21)
    34675: (_U, 0),  # ICC profile (ICC.1 Annex B.3), checked for its header
}  # fmt: skip
_LAYOUTS = ((273, 279), (324, 325))  # (offsets, byte counts): strips or tiles
_NEW_SUBFILE, _OLD_SUBFILE, _COMPRESSION, _JPEG_TABLES, _ICC = 254, 255, 259, 347, 34675
_READ = set(_KEEP) | {tag for pair in _LAYOUTS for tag in pair} | {_OLD_SUBFILE}
_POINTERS = frozenset({330, 34665, 34853, 40965})  # SubIFDs, Exif, GPS, Interop
# None, CCITT RLE/T.4/T.6, LZW, JPEG (Tech Note 2), Deflate, PackBits: pixels only. Others
# (old-style JPEG, JPEG 2000, WebP, ...) wrap containers that can carry their own metadata.
_COMPRESSIONS = frozenset({1, 2, 3, 4, 5, 7, 8, 32773, 32946})
_JPEG = 7
_MAX_IFDS = 1024  # IFDs in the main chain, and sub-IFDs: more is not a real document
_MAX_VALUES = 1 << 24  # bytes of kept tag values in all: a memory bound
_MAX_OFFSET = 2**32 - 1  # classic TIFF offsets are 32 bits
_TAG = attrgetter("tag")  # IFD entries are sorted by tag (TIFF 6.0 §2)
_NAMES = {
    269: "DocumentName", 270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software",
    306: "DateTime", 315: "Artist", 316: "HostComputer", 330: "SubIFDs", 700: "XMP",
    33432: "Copyright", 33723: "IPTC", 34377: "Photoshop", 34665: "ExifIFD", 34853: "GPSIFD",
    40965: "InteropIFD", 37724: "ImageSourceData", 50341: "PrintIM", 33550: "GeoTIFF",
    33922: "GeoTIFF", 34264: "GeoTIFF", 34735: "GeoTIFF", 34736: "GeoTIFF", 34737: "GeoTIFF",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Entry:
    tag: int
    kind: int
    count: int
    value: bytes  # raw, in the file's byte order (which the copy keeps: samples depend on it)


@dataclass(frozen=True, slots=True)
class _Ifd:
    entries: tuple[_Entry, ...]  # kept tags except the offsets tag, which is rewritten
    offsets_tag: int
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]


class _Parser:
    """Reads the main IFD chain of a classic TIFF, keeping full-resolution images only."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.size = source_size(source, "TIFF")
        self.removed: list[str] = []
        self.budget = _MAX_VALUES
        self.regions: list[tuple[int, int]] = [(0, 8)]  # metadata bytes no strip may cover
        self.pointers: list[int] = []
        head = read_at(source, 0, 8, "TIFF header")
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None:
            raise StripError("not a TIFF file: bad byte order mark")
        self.order = order
        magic, self.first = struct.unpack_from(order + "HI", head, 2)
        if magic == 43:
            raise StripError("BigTIFF is not supported")
        if magic != 42:
            raise StripError("not a TIFF file: bad magic number")

    def ifds(self) -> list[_Ifd]:
        kept: list[_Ifd] = []
        seen: set[int] = set()
        offset = self.first
        while offset:
            if offset in seen or len(seen) >= _MAX_IFDS:
                raise StripError("TIFF IFD chain loops or is implausibly long")
            seen.add(offset)
            index = len(seen) - 1
            raw, offset = self._scan(offset)
            entries = self._entries(raw)
            subfile = self._first(entries, _NEW_SUBFILE, 0)
            if index and (subfile & 1 or self._first(entries, _OLD_SUBFILE, 1) == 2):
                self.removed.append(f"IFD{index} (reduced-resolution image)")
                continue
            kept.append(self._ifd(index, entries))
        if not kept:
            raise StripError("TIFF has no image file directory")
        self._mark_sub_ifds(seen)
        spans = [(a, a + n) for ifd in kept for a, n in zip(ifd.offsets, ifd.lengths, strict=True)]
        if overlaps(spans, self.regions):
            # A damaged offset would copy tags (a GPS block, say) into the image data.
            raise StripError("TIFF image data overlaps the file's tags")
        return kept

    def _scan(self, offset: int) -> tuple[list[tuple[int, int, int, bytes]], int]:
        """The raw entries of the IFD at `offset` and the next IFD's; marks metadata regions."""
        (count,) = struct.unpack(self.order + "H", read_at(self.source, offset, 2, "TIFF IFD"))
        raw = read_at(self.source, offset + 2, 12 * count + 4, "TIFF IFD")
        self.regions.append((offset, offset + 6 + 12 * count))
        entries = []
        for at in range(0, 12 * count, 12):
            tag, kind, n, field = struct.unpack_from(self.order + "HHI4s", raw, at)
            (pointer,) = struct.unpack(self.order + "I", field)
            if _TYPE_SIZE.get(kind, 0) * n > 4:
                self.regions.append((pointer, pointer + _TYPE_SIZE[kind] * n))
            if tag in _POINTERS and kind in (_LONG, _IFD) and n == 1:
                self.pointers.append(pointer)
            entries.append((tag, kind, n, field))
        return entries, struct.unpack_from(self.order + "I", raw, 12 * count)[0]

    def _mark_sub_ifds(self, seen: set[int]) -> None:
        """Mark the Exif, GPS, Interop and SubIFD directories too, though none is copied."""
        while self.pointers and len(seen) < 2 * _MAX_IFDS:
            offset = self.pointers.pop()
            if offset not in seen:
                seen.add(offset)
                try:
                    self._scan(offset)
                except StripError:
                    continue  # an unreadable directory that is dropped anyway

    def _entries(self, raw: list[tuple[int, int, int, bytes]]) -> dict[int, _Entry]:
        values: dict[int, _Entry] = {}
        for tag, kind, count, field in raw:
            if tag not in _READ:
                self.removed.append(_NAMES.get(tag, f"tag {tag}"))
            elif tag in values:
                raise StripError(f"TIFF IFD repeats tag {tag}")
            elif kind not in _TYPE_SIZE:
                raise StripError(f"TIFF tag {tag} has unknown field type {kind}")
            else:
                values[tag] = self._entry(tag, kind, count, field)
        return values

    def _entry(self, tag: int, kind: int, count: int, field: bytes) -> _Entry:
        length = _TYPE_SIZE[kind] * count
        self.budget -= length
        if self.budget < 0:
            raise StripError("TIFF tag values are implausibly large")
        if length <= 4:
            return _Entry(tag, kind, count, field[:length])
        (at,) = struct.unpack(self.order + "I", field)
        return _Entry(tag, kind, count, read_at(self.source, at, length, f"TIFF tag {tag}"))

    def _ints(self, entry: _Entry) -> tuple[int, ...]:
        if entry.kind not in (_SHORT, _LONG):
            raise StripError(f"TIFF tag {entry.tag} must be SHORT or LONG")
        code = "H" if entry.kind == _SHORT else "I"
        return struct.unpack(f"{self.order}{entry.count}{code}", entry.value)

    def _first(self, values: dict[int, _Entry], tag: int, default: int) -> int:
        entry = values.get(tag)
        ints = (default,) if entry is None else self._ints(entry)
        if len(ints) != 1:
            raise StripError(f"TIFF tag {tag} must hold one value")
        return ints[0]

    def _ifd(self, index: int, values: dict[int, _Entry]) -> _Ifd:
        if 256 not in values or 257 not in values:
            raise StripError(f"TIFF IFD{index} lacks the image size")
        compression = self._first(values, _COMPRESSION, 1)
        if compression not in _COMPRESSIONS:
            raise StripError(f"TIFF compression {compression} is not supported")
        self._check_values(index, values)
        layouts = [pair for pair in _LAYOUTS if pair[0] in values or pair[1] in values]
        if len(layouts) != 1 or not all(tag in values for tag in layouts[0]):
            raise StripError(f"TIFF IFD{index} needs either strips or tiles, with byte counts")
        offsets_tag, counts_tag = layouts[0]
        offsets, lengths = self._ints(values[offsets_tag]), self._ints(values[counts_tag])
        if len(offsets) != len(lengths) or not offsets:
            raise StripError(f"TIFF IFD{index} has mismatched strip offsets and byte counts")
        if any(at + length > self.size for at, length in zip(offsets, lengths, strict=True)):
            raise StripError(f"TIFF IFD{index} image data runs past the end of the file")
        if compression == _JPEG:
            self._check_jpeg(index, values.get(_JPEG_TABLES), offsets, lengths)
        entries = sorted((e for e in values.values() if e.tag in _KEEP), key=_TAG)
        return _Ifd((*entries, values[counts_tag]), offsets_tag, offsets, lengths)

    def _check_values(self, index: int, values: dict[int, _Entry]) -> None:
        """Kept tags must have their TIFF 6.0 types and counts (§8, §21), ICC its header."""
        samples = self._first(values, 277, 1)
        bits = self._ints(values[258])[0] if 258 in values and values[258].count else 1
        counts = {258: (samples,), 339: (samples,), 338: range(samples), 320: (3 << bits,)}
        counts[301] = (1 << bits, 3 << bits)
        for entry in values.values():
            kinds, count = _KEEP.get(entry.tag, (frozenset({entry.kind}), 0))
            allowed = counts.get(entry.tag, (count,) if count else range(1, 1 << 32))
            if entry.kind not in kinds or entry.count not in allowed or not entry.count:
                raise StripError(f"TIFF IFD{index} tag {entry.tag} has an unexpected type or count")
        icc = values.get(_ICC)
        if icc and (icc.value[36:40] != b"acsp" or icc.value[:4] != len(icc.value).to_bytes(4)):
            raise StripError(f"TIFF IFD{index} ICC profile is malformed")

    def _check_jpeg(
        self, index: int, tables: _Entry | None, offsets: tuple[int, ...], lengths: tuple[int, ...]
    ) -> None:
        """JPEG strips are whole JPEG streams: refuse any that would carry APPn or COM."""
        if tables is not None:
            what = f"TIFF IFD{index} JPEGTables"
            jpeg.verify_embedded(io.BytesIO(tables.value), what=what, tables=True)
        for at, length in zip(offsets, lengths, strict=True):
            if length:
                strip = Slice(self.source, at, length)
                jpeg.verify_embedded(strip, what=f"TIFF IFD{index} JPEG strip", tables=False)


def _padded(length: int) -> int:
    return length + (length & 1)  # TIFF 6.0 §2: values begin on word boundaries


def _ifd_size(ifd: _Ifd) -> int:
    values = [e.value for e in ifd.entries] + [b"\x00" * 4 * len(ifd.offsets)]
    extra = sum(_padded(len(value)) for value in values if len(value) > 4)
    return 2 + 12 * len(values) + 4 + extra


def _ifd_bytes(order: str, ifd: _Ifd, at: int, next_at: int, data_at: list[int]) -> bytes:
    """Serialize one IFD at offset `at`, with out-of-line values right after it."""
    value = struct.pack(f"{order}{len(data_at)}I", *data_at)
    entries = sorted((*ifd.entries, _Entry(ifd.offsets_tag, _LONG, len(data_at), value)), key=_TAG)
    head = [struct.pack(order + "H", len(entries))]
    extra: list[bytes] = []
    extra_at = at + 2 + 12 * len(entries) + 4
    for entry in entries:
        field = entry.value.ljust(4, b"\x00")
        if len(entry.value) > 4:
            field = struct.pack(order + "I", extra_at)
            extra.append(entry.value.ljust(_padded(len(entry.value)), b"\x00"))
            extra_at += len(extra[-1])
        head.append(struct.pack(order + "HHI", entry.tag, entry.kind, entry.count) + field)
    head.append(struct.pack(order + "I", next_at))
    return b"".join(head + extra)


def _write(parser: _Parser, ifds: list[_Ifd], emit: Emit, data: Emit) -> None:
    """Emit header and IFDs, then every strip or tile byte-identical to `data`."""
    starts = list(accumulate((_ifd_size(ifd) for ifd in ifds), initial=8))
    position, placed = starts[-1], []
    for ifd in ifds:
        placed.append(list(accumulate(ifd.lengths[:-1], initial=position)))
        position += sum(ifd.lengths)
    if position > _MAX_OFFSET:
        raise StripError("TIFF copy would exceed 4 GiB")
    magic = b"II*\x00" if parser.order == "<" else b"MM\x00*"
    emit(magic + struct.pack(parser.order + "I", 8))
    for index, ifd in enumerate(ifds):
        next_at = starts[index + 1] if index + 1 < len(ifds) else 0
        emit(_ifd_bytes(parser.order, ifd, starts[index], next_at, placed[index]))
    _copy_data(parser, ifds, data)


def _copy_data(parser: _Parser, ifds: list[_Ifd], emit: Emit) -> None:
    for ifd in ifds:
        for at, length in zip(ifd.offsets, ifd.lengths, strict=True):
            copy_at(parser.source, at, length, emit, "TIFF image data")


class TiffStripper:
    """Sharing copies of classic TIFF: the main IFD chain rebuilt from an allowlist of tags.

    Kept: every full-resolution IFD of the main chain (pages), with only the tags in _KEEP
    (size, samples, compression, photometric, layout, resolution, orientation, colour, ICC,
    YCbCr, JPEGTables) plus the strip or tile offsets (rewritten) and byte counts; the image
    data byte-identical, in the file's byte order. Dropped: every other tag (Make, Model,
    Artist, Software, DateTime, XMP, IPTC, Photoshop, GeoTIFF, Exif/GPS/Interop and SubIFD
    pointers, so the sub-IFDs they lead to) and reduced-resolution IFDs (thumbnails) after
    IFD0. Refused: BigTIFF, compressions other than the pixel-only ones in _COMPRESSIONS,
    kept tags of unexpected type or count, JPEG strips or tables with APPn/COM, image data
    overlapping tags, loops, truncation. Needs a seekable source. Nothing is written before
    the whole structure has been checked. The digest is SHA-256 over the strips or tiles of
    the kept IFDs, in order.
    """

    name = "tiff"
    version = "tiff/1"
    media_types = frozenset({"image/tiff"})

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        parser = _Parser(source)
        ifds = parser.ifds()
        digest = hashlib.sha256()

        def data(piece: bytes) -> None:
            digest.update(piece)
            sink.write(piece)

        _write(parser, ifds, sink.write, data)
        return StripReport(unique(parser.removed), digest.hexdigest(), "tiff-strips-tiles")

    def content_digest(self, source: BinaryIO) -> str:
        parser = _Parser(source)
        digest = hashlib.sha256()
        _copy_data(parser, parser.ifds(), digest.update)
        return digest.hexdigest()
