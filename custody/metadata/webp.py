"""WebP sharing copies (WebP RIFF container, RFC 9649 §2): a chunk allowlist, RIFF size fixed."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from custody.metadata.base import StripError, StripReport
from custody.metadata.binary import (
    Emit,
    copy_at,
    discard,
    exif_orientation,
    orientation_exif,
    read_at,
    source_size,
    unique,
)

_BITSTREAMS = frozenset({b"VP8 ", b"VP8L"})
_IMAGE = _BITSTREAMS | {b"ALPH"}  # the chunks the content digest covers
_KEEP = _IMAGE | {b"ICCP", b"ANIM"}  # plus VP8X and ANMF, which are rewritten
# VP8X flags (RFC 9649 §2.7): ICC, alpha, animation survive; Exif and XMP go with their chunks.
_ICC, _ALPHA, _EXIF, _ANIM = 0x20, 0x10, 0x08, 0x02
_MAX_PIECES = 200_000  # a copy plan larger than this is not a real image (memory bound)
_EXIF_PREFIX = 1 << 16  # IFD0 (with Orientation) sits at the start of every real Exif block
_FRAME_HEADER = 16  # ANMF X, Y, width, height, duration, flags (RFC 9649 §2.7.1.1)

Piece = bytes | tuple[int, int, bool]  # literal bytes, or (offset, length, digested)


def _header(fourcc: bytes, size: int) -> bytes:
    return fourcc + struct.pack("<I", size)


def _name(fourcc: bytes) -> str:
    """A FourCC as a printable name (damaged files have any bytes there)."""
    text = fourcc.decode("latin-1")
    return text.strip() if text.isprintable() and text.isascii() else fourcc.hex()


def _padded(size: int) -> int:
    return size + (size & 1)  # RIFF chunks are padded to even length


def _well_formed(fourcc: bytes, head: bytes, size: int) -> bool:
    """Check the signature at the start of a kept chunk's payload."""
    if fourcc == b"VP8 ":  # RFC 6386 §9.1: a key frame tag, then the start code 9d 01 2a
        return size >= 10 and head[0] & 1 == 0 and head[3:6] == b"\x9d\x01\x2a"
    if fourcc == b"VP8L":  # WebP lossless bitstream §3.1: signature 0x2f
        return size >= 5 and head[0] == 0x2F
    if fourcc == b"ALPH":  # RFC 9649 §2.7.2: compression method 0 or 1
        return size >= 1 and head[0] & 3 <= 1
    if fourcc == b"ICCP":  # ICC.1 §7.2: profile size, then "acsp" at byte 36
        return size >= 128 and int.from_bytes(head[:4], "big") == size and head[36:40] == b"acsp"
    return size == 6  # ANIM: background colour and loop count


@dataclass
class _Plan:
    """The copy as pieces of the source and new bytes, built from chunk headers alone."""

    source: BinaryIO
    pieces: list[Piece] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    flags: int | None = None  # VP8X flags, None for the simple format
    orientation: int | None = None  # from the first EXIF chunk with a rotation
    icc: int = 0  # counts of chunks that decide the layout
    anim: int = 0
    frames: int = 0
    bitstreams: int = 0

    def add(self, piece: Piece) -> None:
        if len(self.pieces) >= _MAX_PIECES:
            raise StripError("WebP has an implausible number of chunks")
        self.pieces.append(piece)

    def chunks(self, start: int, end: int) -> list[tuple[bytes, int, int]]:
        """(fourcc, payload offset, payload size) of the chunks filling [start, end) exactly."""
        found: list[tuple[bytes, int, int]] = []
        while start < end:
            fourcc, size = struct.unpack("<4sI", read_at(self.source, start, 8, "WebP chunk"))
            if start + 8 + _padded(size) > end:
                raise StripError(f"WebP chunk {fourcc!r} overruns its container")
            found.append((fourcc, start + 8, size))
            start += 8 + _padded(size)
            if len(found) > _MAX_PIECES:
                raise StripError("WebP has an implausible number of chunks")
        return found

    def chunk(self, fourcc: bytes, offset: int, size: int) -> int:
        """Plan one kept chunk byte-identical; return its padded length with header."""
        head = read_at(self.source, offset, min(size, 40), f"WebP {fourcc!r} chunk")
        if not _well_formed(fourcc, head, size):
            # Kept chunks are copied verbatim: a damaged fourcc must not pass Exif off as one.
            raise StripError(f"WebP {fourcc.decode('latin-1')} chunk is malformed")
        self.add(_header(fourcc, size))
        self.add((offset, size, fourcc in _IMAGE))
        if size & 1:
            self.add(b"\x00")
        return 8 + _padded(size)


def _plan(source: BinaryIO) -> _Plan:
    size = source_size(source, "WebP")
    riff, length, webp = struct.unpack("<4sI4s", read_at(source, 0, 12, "RIFF header"))
    if riff != b"RIFF" or webp != b"WEBP" or length < 4:
        raise StripError("not a WebP file: bad RIFF header")
    if length + 8 > size:
        raise StripError("WebP file is shorter than its RIFF size")
    plan = _Plan(source)
    if length + 8 < size:
        plan.removed.append("data after RIFF")
    for index, (fourcc, offset, chunk_size) in enumerate(plan.chunks(12, length + 8)):
        _top_level(plan, index, fourcc, offset, chunk_size)
    _check_layout(plan)
    return plan


def _top_level(plan: _Plan, index: int, fourcc: bytes, offset: int, size: int) -> None:
    if fourcc == b"VP8X":
        if index != 0 or size != 10:
            raise StripError("WebP VP8X chunk is not first or has the wrong size")
        plan.flags = read_at(plan.source, offset, 1, "VP8X flags")[0]
        plan.add(b"")  # placeholder: the flags depend on what the rest keeps
    elif fourcc == b"ANMF":
        _frame(plan, offset, size)
    elif fourcc in _KEEP:
        plan.icc += fourcc == b"ICCP"
        plan.anim += fourcc == b"ANIM"
        plan.bitstreams += fourcc in _BITSTREAMS
        plan.chunk(fourcc, offset, size)
    else:
        if fourcc == b"EXIF" and plan.orientation is None:
            block = read_at(plan.source, offset, min(size, _EXIF_PREFIX), "WebP EXIF chunk")
            plan.orientation = exif_orientation(block)
        plan.removed.append(_name(fourcc))


def _frame(plan: _Plan, offset: int, size: int) -> None:
    """Plan an ANMF frame: its header and image subchunks kept, anything else dropped."""
    if size < _FRAME_HEADER:
        raise StripError("WebP ANMF chunk is too short")
    at = len(plan.pieces)
    plan.add(b"")  # placeholder for the ANMF header, whose size depends on what is kept
    plan.add((offset, _FRAME_HEADER, True))
    kept, bitstreams = _FRAME_HEADER, 0
    for fourcc, sub, sub_size in plan.chunks(offset + _FRAME_HEADER, offset + size):
        if fourcc in _IMAGE:
            bitstreams += fourcc in _BITSTREAMS
            kept += plan.chunk(fourcc, sub, sub_size)
        else:
            plan.removed.append(f"ANMF/{_name(fourcc)}")
    if bitstreams != 1:
        raise StripError("WebP ANMF frame does not hold exactly one bitstream")
    plan.pieces[at] = _header(b"ANMF", kept)
    plan.frames += 1


def _check_layout(plan: _Plan) -> None:
    if plan.flags is None:
        if plan.bitstreams != 1 or plan.frames or plan.anim or plan.icc:
            raise StripError("simple WebP must hold exactly one VP8/VP8L chunk")
        plan.orientation = None  # no VP8X, so no Exif can be declared
        return
    animated = bool(plan.flags & _ANIM)
    if animated and (plan.anim != 1 or not plan.frames or plan.bitstreams):
        raise StripError("animated WebP needs one ANIM chunk and frames, no still image")
    if not animated and (plan.bitstreams != 1 or plan.frames or plan.anim):
        raise StripError("still WebP must hold exactly one VP8/VP8L chunk")
    if plan.icc > 1:
        raise StripError("WebP has more than one ICCP chunk")
    flags = plan.flags & (_ALPHA | _ANIM) | (_ICC if plan.icc else 0)
    if plan.orientation is not None:
        # Orientation 1 is the default, so only a real rotation is worth re-emitting.
        block = orientation_exif(plan.orientation)
        plan.add(_header(b"EXIF", len(block)) + block)
        flags |= _EXIF
    canvas = read_at(plan.source, 12 + 8 + 4, 6, "VP8X canvas size")
    # Reserved bits and bytes are written as zero (RFC 9649 §2.7: MUST be 0).
    plan.pieces[0] = _header(b"VP8X", 10) + bytes([flags, 0, 0, 0]) + canvas


def _emit(plan: _Plan, emit: Emit) -> str:
    """Write the planned pieces; return the digest of the image-data pieces."""
    digest = hashlib.sha256()

    def hashed(data: bytes) -> None:
        digest.update(data)
        emit(data)

    for piece in plan.pieces:
        if isinstance(piece, bytes):
            emit(piece)
        else:
            offset, length, image = piece
            copy_at(plan.source, offset, length, hashed if image else emit, "WebP chunk")
    return digest.hexdigest()


class WebpStripper:
    """Sharing copies of WebP: a RIFF chunk allowlist, the RIFF size and VP8X flags rewritten.

    Kept byte-identical: VP8, VP8L, ALPH, ICCP, ANIM, and ANMF frames with their image
    subchunks; VP8X with the Exif/XMP flags and reserved bits cleared; a minimal EXIF chunk
    with only Orientation, where the first EXIF had one other than 1. Dropped: EXIF, XMP,
    unknown chunks (top level and inside ANMF), and data after the RIFF size. Refused:
    truncation, chunks overrunning their container, layouts other than one still image or
    an ANIM animation. Needs a seekable source: the RIFF size leads the file, so the copy is
    planned from chunk headers first. The digest is SHA-256 over the ANMF frame headers and
    the ALPH, VP8 and VP8L payloads, in order. On StripError after writing began, the sink
    holds a partial copy that must be discarded.
    """

    name = "webp"
    version = "webp/1"
    media_types = frozenset({"image/webp"})

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        plan = _plan(source)
        body = sum(len(p) if isinstance(p, bytes) else p[1] for p in plan.pieces)
        sink.write(b"RIFF" + struct.pack("<I", 4 + body) + b"WEBP")
        digest = _emit(plan, sink.write)
        return StripReport(unique(plan.removed), digest, "webp-frames-bitstreams")

    def content_digest(self, source: BinaryIO) -> str:
        return _emit(_plan(source), discard)
