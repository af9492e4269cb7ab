"""Codec headers an Ogg copy keeps verbatim, read to their last bit (Vorbis I §4.2, RFC 7845 §5.1).

A copy keeps the identification and setup headers byte for byte, so whatever rides after
their last field (a whole comment header, say) would reach the copy unseen. Each is parsed
to its end, and one with bytes left over is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from custody.metadata.base import StripError

_VORBIS_ID = 30  # Vorbis I §4.2.2: the identification header's fixed length
_CODEBOOK_SYNC = 0x564342  # Vorbis I §3.2.1: "BCV", least significant byte first


class _Bits:
    """Vorbis I §2.1.4: values packed from each byte's least significant bit up."""

    def __init__(self, data: bytes, start: int) -> None:
        self.data, self.at = data, start * 8

    def read(self, width: int) -> int:
        end = self.at + width
        if end > len(self.data) * 8:
            raise StripError("Vorbis setup header ends early")
        chunk = int.from_bytes(self.data[self.at // 8 : (end + 7) // 8], "little")
        value = (chunk >> (self.at % 8)) & ((1 << width) - 1)
        self.at = end
        return value

    def skip(self, width: int) -> None:
        if self.at + width > len(self.data) * 8:
            raise StripError("Vorbis setup header ends early")
        self.at += width

    def index(self, count: int, what: str) -> int:
        value = self.read(8)
        if value >= count:
            raise StripError(f"Vorbis setup header names {what} {value} of {count}")
        return value


def check_vorbis_headers(packets: Sequence[bytes]) -> None:
    """The identification and setup headers of Vorbis (the comment header is rebuilt)."""
    check_vorbis_setup(packets[2], check_vorbis_identification(packets[0]))


def check_opus_headers(packets: Sequence[bytes]) -> None:
    """OpusHead (OpusTags is rebuilt)."""
    check_opus_head(packets[0])


def check_vorbis_identification(packet: bytes) -> int:
    """The channel count of a well-formed identification header (§4.2.2)."""
    if len(packet) != _VORBIS_ID or packet[7:11] != bytes(4) or not packet[29] & 1:
        raise StripError("malformed Vorbis identification header")
    if packet[11] == 0:
        raise StripError("Vorbis identification header with no channels")
    return packet[11]


def check_vorbis_setup(packet: bytes, channels: int) -> None:
    """Refuse a setup header (§4.2.4) that is malformed or has bytes after its framing bit."""
    if not packet.startswith(b"\x05vorbis"):
        raise StripError("malformed Vorbis setup header")
    bits = _Bits(packet, 7)
    books = bits.read(8) + 1
    for _ in range(books):
        _codebook(bits)
    for _ in range(bits.read(6) + 1):  # time domain transforms: placeholders, all zero
        if bits.read(16):
            raise StripError("Vorbis setup header with a time domain transform")
    floors = _repeat(bits, lambda: _floor(bits, books))
    residues = _repeat(bits, lambda: _residue(bits, books))
    mappings = _repeat(bits, lambda: _mapping(bits, channels, floors, residues))
    _repeat(bits, lambda: _mode(bits, mappings))
    if not bits.read(1):
        raise StripError("Vorbis setup header without its framing bit")
    if (bits.at + 7) // 8 != len(packet) or packet[-1] >> (bits.at % 8 or 8):
        raise StripError("bytes after the end of the Vorbis setup header")


def check_opus_head(packet: bytes) -> None:
    """Refuse an OpusHead (RFC 7845 §5.1) longer than its channel mapping needs."""
    if len(packet) < 19 or packet[8] >> 4:
        raise StripError("malformed OpusHead")
    expected = 19 if packet[18] == 0 else 21 + packet[9]
    if len(packet) != expected:
        raise StripError(f"OpusHead of {len(packet)} bytes where {expected} are expected")


def _repeat(bits: _Bits, read_one: Callable[[], None]) -> int:
    """A 6-bit count less one, then that many items (floors, residues, mappings, modes)."""
    count = bits.read(6) + 1
    for _ in range(count):
        read_one()
    return count


def _ilog(value: int) -> int:
    return value.bit_length()


def _codebook(bits: _Bits) -> None:
    """§3.2.1: sync pattern, dimensions, entry lengths, lookup table."""
    if bits.read(24) != _CODEBOOK_SYNC:
        raise StripError("Vorbis codebook without its sync pattern")
    dimensions, entries = bits.read(16), bits.read(24)
    if dimensions == 0 or entries == 0:
        raise StripError("empty Vorbis codebook")
    if bits.read(1):  # ordered: runs of equal lengths
        entry, length = 0, bits.read(5) + 1
        while entry < entries:
            entry, length = entry + bits.read(_ilog(entries - entry)), length + 1
            if entry > entries:
                raise StripError("Vorbis codebook lengths overrun its entries")
    elif bits.read(1):  # sparse: a flag per entry, a length for the used ones
        for _ in range(entries):
            if bits.read(1):
                bits.skip(5)
    else:
        bits.skip(5 * entries)
    lookup = bits.read(4)
    if lookup in (1, 2):
        bits.skip(64)  # minimum and delta, 32-bit floats
        value_bits = bits.read(4) + 1
        bits.skip(1)  # sequence_p
        values = _lookup1_values(entries, dimensions) if lookup == 1 else entries * dimensions
        bits.skip(value_bits * values)
    elif lookup:
        raise StripError(f"Vorbis codebook lookup type {lookup}")


def _lookup1_values(entries: int, dimensions: int) -> int:
    """§9.2.3: the greatest r with r ** dimensions <= entries."""
    root = int(entries ** (1 / dimensions))
    while root**dimensions > entries:
        root -= 1
    while (root + 1) ** dimensions <= entries:
        root += 1
    return root


def _floor(bits: _Bits, books: int) -> None:
    kind = bits.read(16)
    if kind == 0:  # §6.2.1
        bits.skip(8 + 16 + 16 + 6 + 8)  # order, rate, bark map size, amplitude bits, offset
        for _ in range(bits.read(4) + 1):
            bits.index(books, "codebook")
    elif kind == 1:
        _floor1(bits, books)
    else:
        raise StripError(f"Vorbis floor type {kind}")


def _floor1(bits: _Bits, books: int) -> None:
    """§7.2.2: partitions of classes, each class's books, then the X list."""
    classes = [bits.read(4) for _ in range(bits.read(5))]
    dimensions = []
    for _ in range(max(classes, default=-1) + 1):
        dimensions.append(bits.read(3) + 1)
        subclasses = bits.read(2)
        if subclasses:
            bits.index(books, "codebook")
        for _ in range(1 << subclasses):
            if bits.read(8) > books:  # stored as book + 1, 0 meaning none
                raise StripError("Vorbis floor names a missing codebook")
    bits.skip(2)  # multiplier
    range_bits = bits.read(4)
    bits.skip(range_bits * sum(dimensions[c] for c in classes))


def _residue(bits: _Bits, books: int) -> None:
    """§8.6.1: extent, partitions, then a cascade of books per classification."""
    kind = bits.read(16)
    if kind > 2:
        raise StripError(f"Vorbis residue type {kind}")
    bits.skip(24 + 24 + 24)  # begin, end, partition size
    classifications = bits.read(6) + 1
    bits.index(books, "codebook")
    cascades = []
    for _ in range(classifications):
        low = bits.read(3)
        cascades.append((bits.read(5) if bits.read(1) else 0) * 8 + low)
    for _ in range(sum(c.bit_count() for c in cascades)):
        bits.index(books, "codebook")


def _mapping(bits: _Bits, channels: int, floors: int, residues: int) -> None:
    """§4.2.4 step 5: submaps, channel coupling, channel multiplex, submap floors and residues."""
    if bits.read(16):
        raise StripError("Vorbis mapping of a type other than 0")
    submaps = bits.read(4) + 1 if bits.read(1) else 1
    if bits.read(1):
        width = _ilog(channels - 1)
        for _ in range(bits.read(8) + 1):
            magnitude, angle = bits.read(width), bits.read(width)
            if magnitude == angle or max(magnitude, angle) >= channels:
                raise StripError("Vorbis mapping couples channels that do not exist")
    if bits.read(2):
        raise StripError("Vorbis mapping with its reserved bits set")
    if submaps > 1 and any(bits.read(4) >= submaps for _ in range(channels)):
        raise StripError("Vorbis mapping names a missing submap")
    for _ in range(submaps):
        bits.skip(8)  # unused time configuration
        bits.index(floors, "floor")
        bits.index(residues, "residue")


def _mode(bits: _Bits, mappings: int) -> None:
    bits.skip(1)  # block flag
    if bits.read(16) or bits.read(16):
        raise StripError("Vorbis mode with a window or transform type other than 0")
    bits.index(mappings, "mapping")
