"""PNG sharing copies (ISO/IEC 15948, W3C PNG 3rd edition, APNG): a chunk allowlist."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import BinaryIO

from custody.metadata.base import StripError, StripReport
from custody.metadata.binary import (
    CHUNK,
    Emit,
    Reader,
    discard,
    exif_orientation,
    orientation_exif,
    unique,
)

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that shape the pixels or their colour; none carries free text or a device identity.
_KEEP = frozenset(
    {
        b"IHDR", b"PLTE", b"IDAT", b"IEND",  # critical (§11.2)
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"cICP",  # colour and alpha
        b"pHYs",  # pixel aspect and density: a display hint, never identifying
        b"acTL", b"fcTL", b"fdAT",  # APNG animation control and frames
    }
)  # fmt: skip
_IMAGE_DATA = frozenset({b"IDAT", b"fdAT"})
# The sizes the specification gives the kept chunks that are neither image data nor IHDR,
# fcTL, IEND (§11.2.3, §11.3; APNG acTL): extra bytes no decoder reads could hide anything.
_FIXED = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"cICP": 4, b"acTL": 8}
_BY_COLOUR = {  # colour type -> size; tRNS: none for types with alpha (4, 6), 3 see below
    b"sBIT": {0: 1, 2: 3, 3: 3, 4: 2, 6: 4},
    b"bKGD": {0: 2, 2: 6, 3: 1, 4: 2, 6: 6},
    b"tRNS": {0: 2, 2: 6},
}
_MAX_LENGTH = 2**31 - 1  # §5.3: chunk lengths are at most 2^31 - 1
_MAX_ICCP = 1 << 24  # a compressed ICC profile larger than 16 MiB is not a real one
_EXIF_PREFIX = 1 << 16  # IFD0 (with Orientation) sits at the start of every real eXIf
_ICC_NAME = b"ICC profile"  # iCCP names are free text (§11.3.2.3): replace with a fixed one
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # §6.1 colour type -> samples per pixel
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}  # §11.2.1
# §8.2 Adam7 passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip


def _raw_size(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines that an image's zlib stream inflates to (§7.2, §8.2)."""
    total = 0
    for x0, y0, dx, dy in _ADAM7 if interlaced else ((0, 0, 1, 1),):
        columns, rows = max(0, width - x0 + dx - 1) // dx, max(0, height - y0 + dy - 1) // dy
        if columns and rows:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


class _Inflate:
    """One zlib stream of image data, which must end where the data ends, at its exact size.

    Bytes after the stream's end, or beyond the size the header gives, would be copied
    verbatim although no decoder reads them: a place for anything to hide.
    """

    def __init__(self, expected: int) -> None:
        self.inflate = zlib.decompressobj()
        self.left = expected

    def feed(self, data: bytes) -> None:
        try:
            while True:
                out = self.inflate.decompress(data, CHUNK)  # bounded: a zlib bomb stays flat
                self.left -= len(out)
                if self.left < 0:
                    raise StripError("PNG image data inflates beyond the size its header gives")
                if self.inflate.unused_data:
                    raise StripError("PNG image data goes on after its zlib stream ends")
                data = self.inflate.unconsumed_tail
                if not data and len(out) < CHUNK:
                    return
        except zlib.error as exc:
            raise StripError("PNG image data is not a valid zlib stream") from exc

    def close(self) -> None:
        if not self.inflate.eof or self.left:
            raise StripError("PNG image data ends before the size its header gives")


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class _Walk:
    """One pass over a PNG stream: CRC-checked chunks, kept ones emitted, image data hashed."""

    def __init__(self, source: BinaryIO, emit: Emit) -> None:
        self.reader = Reader(source)
        self.emit = emit
        self.digest = hashlib.sha256()
        self.removed: list[str] = []
        self.count = 0
        self.idat = False
        self.bits, self.interlaced = 0, False  # from IHDR: bits per pixel, Adam7
        self.colour, self.depth = 0, 0  # from IHDR: colour type, bit depth
        self.palette = 0  # PLTE entries
        self.image: _Inflate | None = None  # the IDAT stream
        self.frame: tuple[int, int] | None = None  # APNG: the last fcTL's width and height
        self.frame_data: _Inflate | None = None  # APNG: the open fdAT stream

    def run(self) -> None:
        if self.reader.exact(8, "PNG signature") != SIGNATURE:
            raise StripError("not a PNG stream: bad signature")
        self.emit(SIGNATURE)
        while not self._chunk():
            pass
        if not self.reader.at_eof():
            self.removed.append("data after IEND")

    def _chunk(self) -> bool:
        """Process one chunk; True at IEND."""
        header = self.reader.exact(8, "PNG chunk header")
        length: int = struct.unpack(">I", header[:4])[0]
        kind = header[4:]
        name = kind.decode("latin-1")
        if length > _MAX_LENGTH or not kind.isalpha():
            raise StripError(f"PNG chunk {name!r} has an invalid type or length")
        self._order(kind, length)
        if kind == b"iCCP":
            self._iccp(length)
        elif kind in (b"IHDR", b"fcTL"):
            data = self._buffered(kind, length, length)
            self._ihdr(data) if kind == b"IHDR" else self._fctl(data)
            self.emit(_chunk(kind, data))
        elif kind in _KEEP and kind not in _IMAGE_DATA and kind != b"IEND":
            self._sized(kind, length)
        elif kind in _KEEP:
            self.emit(struct.pack(">I", length) + kind)
            crc = self._data(kind, length, self._keep_piece(kind))
            self.emit(struct.pack(">I", crc))
        elif kind[0] & 0x20 == 0:
            # §5.4: a decoder must not ignore an unknown critical chunk, so neither may we.
            raise StripError(f"PNG has an unknown critical chunk {name!r}")
        elif kind == b"eXIf":
            self._exif(length)
        else:
            self._data(kind, length, discard)
            self.removed.append(name)
        self.count += 1
        return kind == b"IEND"

    def _order(self, kind: bytes, length: int) -> None:
        if (self.count == 0) != (kind == b"IHDR"):
            raise StripError("PNG must start with exactly one IHDR chunk")
        if kind == b"IDAT":
            self.idat = True
        if kind == b"IEND" and (length or not self.idat):
            raise StripError("PNG IEND is not empty or comes before any IDAT")
        if kind == b"fdAT" and length < 4:
            raise StripError("PNG fdAT chunk lacks its sequence number")
        if kind in (b"IEND", b"fcTL") and self.frame_data:
            self.frame_data.close()
            self.frame_data = None
        if kind == b"IEND" and self.image:
            self.image.close()

    def _ihdr(self, data: bytes) -> None:
        if len(data) != 13:
            raise StripError("PNG IHDR chunk is malformed")
        width, height, depth, colour, compression, filtering, interlace = struct.unpack(
            ">IIBBBBB", data
        )
        if not width or not height or depth not in _DEPTHS.get(colour, ()):
            raise StripError("PNG IHDR has an invalid size, bit depth or colour type")
        if compression or filtering or interlace > 1:
            raise StripError("PNG IHDR names an unknown compression, filter or interlace")
        self.bits, self.interlaced = depth * _CHANNELS[colour], bool(interlace)
        self.colour, self.depth = colour, depth
        self.image = _Inflate(_raw_size(width, height, self.bits, self.interlaced))

    def _sized(self, kind: bytes, length: int) -> None:
        if length not in self._sizes(kind):
            raise StripError(f"PNG {kind.decode()} chunk has {length} bytes, not its size")
        data = self._buffered(kind, length, length)
        if kind == b"PLTE":
            self.palette = length // 3
        self.emit(_chunk(kind, data))

    def _sizes(self, kind: bytes) -> range:
        """The data sizes a kept chunk may have, given IHDR's colour type and the palette."""
        if kind in _FIXED:
            return range(_FIXED[kind], _FIXED[kind] + 1)
        if kind == b"PLTE":  # §11.2.2: none in greyscale, at most 2^depth entries in type 3
            entries = {0: 0, 4: 0, 3: 1 << self.depth}.get(self.colour, 256)
            return range(3, 3 * entries + 1, 3)
        if kind == b"tRNS" and self.colour == 3:  # §11.3.2.1: one alpha per palette entry
            return range(1, self.palette + 1)
        size = _BY_COLOUR[kind].get(self.colour)
        return range(0) if size is None else range(size, size + 1)

    def _fctl(self, data: bytes) -> None:
        if len(data) != 26:  # APNG fcTL: sequence, size, offset, delay, dispose, blend
            raise StripError("PNG fcTL chunk is malformed")
        width, height = struct.unpack_from(">II", data, 4)
        if not width or not height:
            raise StripError("PNG fcTL chunk has an empty frame")
        self.frame = (width, height)

    def _keep_piece(self, kind: bytes) -> Emit:
        """Where a kept chunk's data goes: out, and for image data also the digest and inflater."""
        if kind not in _IMAGE_DATA:
            return self.emit
        stream, skip = (self.image, 0) if kind == b"IDAT" else (self._frame_data(), 4)

        def piece(data: bytes) -> None:
            nonlocal skip
            self.digest.update(data)
            self.emit(data)
            if stream is not None:
                stream.feed(data[skip:])
            skip = max(0, skip - len(data))  # fdAT data begins with a sequence number

        return piece

    def _frame_data(self) -> _Inflate:
        if self.frame_data is None:
            if self.frame is None:
                raise StripError("PNG fdAT chunk without a frame control chunk")
            self.frame_data = _Inflate(_raw_size(*self.frame, self.bits, self.interlaced))
            self.frame = None
        return self.frame_data

    def _data(self, kind: bytes, length: int, emit: Emit) -> int:
        """Stream a chunk's data to `emit`, then check its CRC (§5.3); return the CRC."""
        crc = zlib.crc32(kind)

        def piece(data: bytes) -> None:
            nonlocal crc
            crc = zlib.crc32(data, crc)
            emit(data)

        self.reader.copy(length, piece, f"PNG {kind.decode()} chunk")
        (stored,) = struct.unpack(">I", self.reader.exact(4, "PNG chunk CRC"))
        if stored != crc:
            raise StripError(f"PNG {kind.decode()} chunk fails its CRC check")
        return crc

    def _buffered(self, kind: bytes, length: int, limit: int) -> bytes:
        """A chunk's CRC-checked data, keeping at most its first `limit` bytes."""
        kept: list[bytes] = []
        size = 0

        def piece(data: bytes) -> None:
            nonlocal size
            if size < limit:
                kept.append(data[: limit - size])
                size += len(kept[-1])

        self._data(kind, length, piece)
        return b"".join(kept)

    def _iccp(self, length: int) -> None:
        if length > _MAX_ICCP:
            raise StripError("PNG iCCP chunk is implausibly large")
        data = self._buffered(b"iCCP", length, length)
        name, nul, rest = data.partition(b"\x00")
        if not nul or not 1 <= len(name) <= 79 or rest[:1] != b"\x00":
            raise StripError("PNG iCCP chunk is malformed")
        if name != _ICC_NAME:
            self.removed.append("iCCP profile name")
        self.emit(_chunk(b"iCCP", _ICC_NAME + b"\x00" + rest))  # profile bytes unchanged

    def _exif(self, length: int) -> None:
        self.removed.append("eXIf")
        orientation = exif_orientation(self._buffered(b"eXIf", length, _EXIF_PREFIX))
        if orientation is not None:
            # Orientation 1 is the default, so only a real rotation is worth re-emitting.
            self.emit(_chunk(b"eXIf", orientation_exif(orientation)))


class PngStripper:
    """Sharing copies of PNG and APNG: a chunk allowlist, every CRC checked.

    Kept byte-identical: IHDR, PLTE, IDAT, IEND, tRNS, gAMA, cHRM, sRGB, sBIT, bKGD, cICP,
    pHYs, acTL, fcTL, fdAT; iCCP with its free-text name replaced by "ICC profile"; an eXIf
    with only Orientation, where the original eXIf had one other than 1. Dropped: tEXt, zTXt,
    iTXt, eXIf, tIME, every unknown ancillary chunk, and data after IEND. Refused: unknown
    critical chunks, CRC mismatches, a malformed IHDR or fcTL, kept chunks of a size their
    definition does not give (for the colour type and palette), image data that is not one
    zlib stream per frame inflating to exactly the size the header gives (bytes hidden after
    the stream would be copied verbatim), truncation. The digest is SHA-256 over the data of
    the IDAT and fdAT chunks, in order. On StripError the sink holds a partial copy that must
    be discarded.
    """

    name = "png"
    version = "png/1"
    media_types = frozenset({"image/png", "image/apng"})

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        walk = _Walk(source, sink.write)
        walk.run()
        return StripReport(unique(walk.removed), walk.digest.hexdigest(), "png-idat-fdat")

    def content_digest(self, source: BinaryIO) -> str:
        walk = _Walk(source, discard)
        walk.run()
        return walk.digest.hexdigest()
