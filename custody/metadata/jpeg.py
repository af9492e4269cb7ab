"""JPEG sharing copies (ITU-T T.81 markers, JFIF 1.02, Exif 2.32 APP1): frame, tables, scans."""

from __future__ import annotations

import hashlib
import re
import struct
from typing import BinaryIO

from custody.metadata.base import StripError, StripReport
from custody.metadata.binary import (
    CHUNK,
    Emit,
    Readable,
    Reader,
    discard,
    exif_orientation,
    orientation_exif,
    unique,
)

# T.81 Table B.1 marker codes (the byte after 0xFF).
SOI, EOI, SOS, DNL, COM = 0xD8, 0xD9, 0xDA, 0xDC, 0xFE
APP0, APP1, APP2, APP14 = 0xE0, 0xE1, 0xE2, 0xEE
# Frame headers of every process (B.2.2); 0xC4 DHT, 0xC8 JPG, 0xCC DAC sit in between.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Tables and miscellanea that decoding needs (B.2.4): DHT, DAC, DQT, DRI.
_TABLES = frozenset({0xC4, 0xCC, 0xDB, 0xDD})
_RST = frozenset(range(0xD0, 0xD8))
_MAX_FILL = 1024  # 0xFF fill bytes before one marker (B.1.1.2); more is not a real encoder's
# In entropy-coded data, the first 0xFF that is neither stuffing (0xFF00) nor RSTn: fill
# bytes or a marker. Everything before it is data, copied in one piece.
_ENTROPY_STOP = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_JFIF_HEAD = 12  # "JFIF\0", version, units, X/Y density: the fields before the thumbnail size
_ADOBE_LEN = 12  # "Adobe", DCTEncodeVersion, APP14Flags0/1, ColorTransform (Adobe TN 5116)
_IDENT = re.compile(rb"[A-Za-z0-9 ._:/-]{1,40}")


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _app_name(marker: int, payload: bytes) -> str:
    """A printable name for a dropped APPn segment: its identifier string, never its values."""
    ident = _IDENT.match(payload.split(b"\x00", 1)[0])
    label = ident.group().decode() if ident else "unnamed"
    return f"APP{marker - APP0} {label}"


def _tables_fill(payload: bytes, *, huffman: bool) -> bool:
    """DQT (B.2.4.1) or DHT (B.2.4.2) payload: whole tables with valid ids, nothing left over."""
    at = 0
    while at < len(payload):
        kind, slot = payload[at] >> 4, payload[at] & 15
        if kind > 1 or slot > 3:
            return False
        if huffman:
            at += 17 + sum(payload[at + 1 : at + 17])
        else:
            at += 1 + 64 * (kind + 1)
    return at == len(payload) > 0


def _conditioning_fills(payload: bytes) -> bool:
    """DAC (B.2.4.3): for each table, Tc (0 DC, 1 AC) and Tb (0-3), then Cs: for DC the
    bounds L (low nibble) <= U (high nibble), for AC Kx in 1..63; each table once."""
    if not payload or len(payload) % 2:
        return False
    tables = set()
    for at in range(0, len(payload), 2):
        kind, slot, value = payload[at] >> 4, payload[at] & 15, payload[at + 1]
        bounded = (value & 15) <= (value >> 4) if kind == 0 else 1 <= value <= 63
        if kind > 1 or slot > 3 or (kind, slot) in tables or not bounded:
            return False
        tables.add((kind, slot))
    return True


def _well_formed(marker: int, payload: bytes) -> bool:
    size = len(payload)
    if marker in _SOF:  # B.2.2: P, Y, X, Nf, then 3 bytes per component
        return size >= 6 and payload[5] > 0 and size == 6 + 3 * payload[5]
    if marker == SOS:  # B.2.3: Ns (1-4), 2 bytes per component, Ss, Se, Ah/Al
        return size >= 1 and 1 <= payload[0] <= 4 and size == 4 + 2 * payload[0]
    if marker in (0xDB, 0xC4):
        return _tables_fill(payload, huffman=marker == 0xC4)
    if marker == 0xCC:
        return _conditioning_fills(payload)
    return size == 2  # DRI (B.2.4.4), DNL (B.2.5)


class _Walk:
    """One pass over a JPEG stream, emitting the kept segments and hashing frame/tables/scans."""

    def __init__(self, source: Readable, emit: Emit) -> None:
        self.reader = Reader(source)
        self.emit = emit
        self.digest = hashlib.sha256()
        self.removed: list[str] = []
        self.frame = self.scan = self.exif = False
        self.tables_only = False

    def run(self) -> None:
        if self.reader.exact(2, "start of image") != b"\xff\xd8":
            raise StripError("not a JPEG stream: no SOI marker")
        self.emit(b"\xff\xd8")
        marker = self._next_marker()
        while marker != EOI:
            marker = self._handle(marker)
        if self.scan == self.tables_only:
            raise StripError(
                "JPEG tables hold a scan" if self.scan else "JPEG ends before any scan"
            )
        self.emit(b"\xff\xd9")
        if not self.reader.at_eof():
            # MPF images and motion-photo videos sit here, each with its own Exif and GPS.
            self.removed.append("data after EOI")

    def _next_marker(self) -> int:
        if self.reader.exact(1, "JPEG marker")[0] != 0xFF:
            raise StripError("JPEG has bytes between segments where a marker belongs")
        for _ in range(_MAX_FILL):
            code = self.reader.exact(1, "JPEG marker")[0]
            if code != 0xFF:
                return code
        raise StripError("JPEG has an implausible run of fill bytes")

    def _payload(self, marker: int) -> bytes:
        (length,) = struct.unpack(">H", self.reader.exact(2, f"length of marker {marker:#04x}"))
        if length < 2:
            raise StripError(f"JPEG segment {marker:#04x} has an impossible length {length}")
        return self.reader.exact(length - 2, f"JPEG segment {marker:#04x}")

    def _keep(self, marker: int, payload: bytes) -> None:
        if not _well_formed(marker, payload):
            # Kept segments are copied verbatim, so they must be exactly what T.81 allows:
            # a damaged marker could otherwise pass an Exif block off as a table.
            raise StripError(f"JPEG segment {marker:#04x} is malformed")
        segment = _segment(marker, payload)
        self.digest.update(segment)
        self.emit(segment)

    def _handle(self, marker: int) -> int:
        """Process one segment; return the marker that follows it."""
        if marker in _SOF:
            if self.frame:
                raise StripError("JPEG has a second frame header (hierarchical or corrupt)")
            self.frame = True
        elif marker == SOS:
            if not self.frame:
                raise StripError("JPEG scan before frame header")
            self._keep(marker, self._payload(marker))
            self.scan = True
            return self._entropy()
        elif marker == DNL and not self.scan:
            raise StripError("JPEG DNL marker before any scan")
        elif APP0 <= marker <= APP0 + 15:
            self._app(marker, self._payload(marker))
            return self._next_marker()
        elif marker == COM:
            self._payload(marker)
            self.removed.append("COM")
            return self._next_marker()
        elif marker not in _TABLES and marker != DNL:
            # SOI, stray RSTn, TEM, DHP/EXP (hierarchical), JPGn and reserved codes.
            raise StripError(f"JPEG marker {marker:#04x} out of place or unsupported")
        self._keep(marker, self._payload(marker))
        return self._next_marker()

    def _app(self, marker: int, payload: bytes) -> None:
        if marker == APP0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            if payload[_JFIF_HEAD:] != b"\x00\x00":
                self.removed.append("APP0 JFIF thumbnail")
            # JFIF 1.02 Figure 7: thumbnail width and height 0, no thumbnail data.
            self.emit(_segment(marker, payload[:_JFIF_HEAD] + b"\x00\x00"))
        elif marker == APP1 and payload.startswith(b"Exif\x00\x00"):
            self.removed.append("APP1 Exif")
            orientation = None if self.exif else exif_orientation(payload)
            self.exif = True
            if orientation is not None:
                # Orientation 1 is the default, so only a real rotation is worth re-emitting.
                self.emit(_segment(marker, b"Exif\x00\x00" + orientation_exif(orientation)))
        elif marker == APP2 and payload.startswith(b"ICC_PROFILE\x00"):
            self.emit(_segment(marker, payload))  # ICC.1:2010 Annex B.4 chunk, byte-identical
        elif marker == APP14 and payload.startswith(b"Adobe") and len(payload) >= _ADOBE_LEN:
            if len(payload) > _ADOBE_LEN:
                self.removed.append("APP14 Adobe extra bytes")
            self.emit(_segment(marker, payload[:_ADOBE_LEN]))  # the colour transform decoders need
        else:
            self.removed.append(_app_name(marker, payload))

    def _entropy(self) -> int:
        """Copy entropy-coded data (with stuffed 0xFF00 and RSTn) and return the next marker."""
        while True:
            buf, pos = self.reader.window(2)
            if pos >= len(buf):
                raise StripError("JPEG entropy-coded data runs off the end")
            limit = min(len(buf), pos + CHUNK)
            stop = _ENTROPY_STOP.search(buf, pos, limit)
            end = stop.start() if stop else limit
            if stop is None and buf[end - 1] == 0xFF:
                end -= 1  # the byte after this 0xFF is not read yet
            if end != pos:
                self._data(buf[pos:end])
                continue
            marker, run = self._after_ff()
            buf, pos = self.reader.window(run + 1)
            if marker == 0x00 or marker in _RST:
                self._data(buf[pos : pos + run + 1])
                continue
            self.reader.advance(run + 1)  # fill bytes before a marker are padding, not data
            return marker

    def _after_ff(self) -> tuple[int, int]:
        """At a 0xFF: the byte after its fill run, and the run's length."""
        buf, pos = self.reader.window(_MAX_FILL + 1)
        run = 1
        while pos + run < len(buf) and buf[pos + run] == 0xFF:
            run += 1
            if run > _MAX_FILL:
                raise StripError("JPEG has an implausible run of fill bytes")
        if pos + run >= len(buf):
            raise StripError("JPEG entropy-coded data runs off the end")
        return buf[pos + run], run

    def _data(self, piece: bytes) -> None:
        self.digest.update(piece)
        self.emit(piece)
        self.reader.advance(len(piece))


def verify_embedded(source: Readable, *, what: str, tables: bool) -> None:
    """Refuse a JPEG stream embedded in another format if a copy would have to drop anything.

    With `tables`, the stream is an abbreviated table specification (T.81 B.5): no scan.
    """
    walk = _Walk(source, discard)
    walk.tables_only = tables
    walk.run()
    if walk.removed:
        raise StripError(f"{what} carries metadata", found=unique(walk.removed))


class JpegStripper:
    """Sharing copies of JPEG: only frame, table and scan segments, JFIF, ICC and Adobe survive.

    Kept: SOFn, DHT, DQT, DAC, DRI, DNL, SOS and entropy-coded data with RSTn, byte-identical;
    JFIF APP0 without its thumbnail; ICC_PROFILE APP2 chunks; the 12 bytes of Adobe APP14;
    a minimal Exif APP1 with only Orientation, where the first Exif had one other than 1.
    Dropped: every other APPn (Exif, XMP, MPF, Photoshop IRB, vendor segments), COM, fill
    bytes before markers, and everything after EOI. Refused: hierarchical JPEG, stray or
    unknown markers, bytes between segments, truncation. The digest is SHA-256 over the kept
    frame, table and scan segments (marker, length, payload) and entropy-coded data, in order.
    On StripError the sink holds a partial copy that must be discarded.
    """

    name = "jpeg"
    version = "jpeg/1"
    media_types = frozenset({"image/jpeg"})

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        walk = _Walk(source, sink.write)
        walk.run()
        return StripReport(unique(walk.removed), walk.digest.hexdigest(), "jpeg-frame-tables-scans")

    def content_digest(self, source: BinaryIO) -> str:
        walk = _Walk(source, discard)
        walk.run()
        return walk.digest.hexdigest()
