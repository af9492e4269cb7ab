"""Serial numbers in the maker notes exifread does not decode (Olympus, Panasonic, Pentax...)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from custody.metadata.extractors.collector import Collector

Order = Literal["little", "big"]
_ORDERS: tuple[Order, Order] = ("little", "big")
# ExifTool's MakerNotes.pm: each maker's signature, where its IFD starts in the note, and
# where its offsets count from: a position in the note, or None for the TIFF header.
_HEADERS: tuple[tuple[bytes, int, int | None], ...] = (
    (b"OLYMPUS\x00", 12, 0),
    (b"OM SYSTEM\x00", 16, 0),
    (b"MOT\x00", 8, 0),
    (b"Nikon\x00\x02", 18, 10),  # a TIFF header of its own at 10, its IFD at 8 from there
    (b"OLYMP\x00", 8, None),
    (b"EPSON\x00", 8, None),
    (b"Panasonic\x00", 12, None),
    (b"SIGMA\x00", 10, None),
    (b"FOVEON\x00", 10, None),
    (b"AOC\x00", 6, None),
    (b"RICOH", 8, None),
    (b"Ricoh", 8, None),
)
# Tag ids of serial numbers, from ExifTool's tag tables (Olympus.pm, Panasonic.pm, ...).
_SERIALS: dict[str, dict[int, str]] = {
    "olympus": {0x0404: "SerialNumber", 0x101A: "SerialNumber"},
    "panasonic": {0x0025: "InternalSerialNumber"},
    "sigma": {0x0002: "SerialNumber"},
    "pentax": {0x0229: "SerialNumber", 0x0215: "CameraInfo"},  # CameraInfo[4]: internal
    "ricoh": {0x0005: "SerialNumber"},
    "motorola": {0x5501: "SerialNumber"},
    "nikon": {0x001D: "SerialNumber", 0x00A0: "SerialNumber"},
}
_EQUIPMENT, _PENTAX_INFO = 0x2010, 0x0215
_OLYMPUS_EQUIPMENT = {
    0x0101: "SerialNumber",
    0x0102: "InternalSerialNumber",
    0x0202: "LensSerialNumber",
    0x0302: "ExtenderSerialNumber",
    0x1003: "FlashSerialNumber",
}
_MAKERS = (
    ("olympus", re.compile(r"^(OLYMPUS|OM Digital)", re.I)),
    ("panasonic", re.compile(r"^(Panasonic|LEICA)", re.I)),
    ("sigma", re.compile(r"^SIGMA", re.I)),
    ("pentax", re.compile(r"^(PENTAX|Asahi)", re.I)),
    ("ricoh", re.compile(r"^RICOH", re.I)),
    ("motorola", re.compile(r"^Motorola", re.I)),
    ("nikon", re.compile(r"^NIKON", re.I)),
)
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_PRINTABLE = re.compile(rb"^[\x20-\x7e]+$")


class _Note:
    """A maker note's bytes, and how its out-of-line values are addressed."""

    def __init__(self, data: bytes, offset: int, base: int | None) -> None:
        self.data = data
        # Where pointers count from, as positions in the note: the maker's base first, then
        # the other one (some firmware versions of a maker differ).
        self.bases = (-offset, 0) if base is None else (base, -offset)

    def at(self, pointer: int) -> Iterator[int]:
        """The positions in the note that `pointer` may designate."""
        return (pointer + base for base in self.bases)

    def value(self, pointer: int, size: int) -> bytes:
        """`size` bytes at `pointer`, trying the maker's base first, then the other one."""
        for at in self.at(pointer):
            if at >= 0 and at + size <= len(self.data):
                return self.data[at : at + size]
        return b""

    def entries(self, start: int) -> Iterator[tuple[int, bytes, Order, int]]:
        """Tag, value, byte order and value offset of each entry of the IFD at `start`, in
        the byte order that gives a plausible directory (makers write either)."""
        for order in _ORDERS:
            count = int.from_bytes(self.data[start : start + 2], order)
            raw = [self.data[at : at + 12] for at in range(start + 2, start + 2 + 12 * count, 12)]
            if not 0 < count <= 512 or start < 0 or len(raw[-1]) < 12:
                continue
            types = [int.from_bytes(entry[2:4], order) for entry in raw]
            if sum(kind in _SIZES for kind in types) < 0.9 * count:
                continue
            for entry, kind in zip(raw, types, strict=True):
                size = _SIZES.get(kind, 1) * int.from_bytes(entry[4:8], order)
                pointer = int.from_bytes(entry[8:12], order)
                value = entry[8 : 8 + size] if size <= 4 else self.value(pointer, size)
                yield int.from_bytes(entry[:2], order), value, order, pointer
            return


def parse_serials(data: bytes, offset: int, make: str, out: Collector) -> None:
    """Serial numbers in `data`, a maker note at `offset` from its TIFF header."""
    maker = next((name for name, pattern in _MAKERS if pattern.match(make.strip())), None)
    if maker is None:
        return
    start, base = next(
        ((skip, base) for header, skip, base in _HEADERS if data.startswith(header)), (0, None)
    )
    note, tags = _Note(data, offset, base), _SERIALS[maker]
    for tag, value, order, pointer in note.entries(start):
        if tag in tags:
            _add(tags[tag], tag, value, order, out)
        elif maker == "olympus" and tag == _EQUIPMENT:  # an IFD pointer, or the IFD inline
            _equipment(note, pointer, out)


def _equipment(note: _Note, pointer: int, out: Collector) -> None:
    """Olympus Equipment sub-IFD: body, lens, extender and flash serials."""
    for start in note.at(pointer):
        for tag, value, order, _pointer in note.entries(start):
            if tag in _OLYMPUS_EQUIPMENT:
                _add(_OLYMPUS_EQUIPMENT[tag], tag, value, order, out)


def _add(name: str, tag: int, value: bytes, order: Order, out: Collector) -> None:
    if tag == _PENTAX_INFO:  # int32u[n]; the fifth is the internal serial number
        serial = int.from_bytes(value[16:20], order)
        out.add("EXIF:MakerNote InternalSerialNumber", str(serial), literal=False)
        return
    text = value.split(b"\x00", 1)[0].strip()
    if _PRINTABLE.match(text):
        out.add(f"EXIF:MakerNote {name}", text.decode("ascii"))
    elif value.strip(b"\x00 "):
        out.add(f"EXIF:MakerNote {name}", value, literal=False)
