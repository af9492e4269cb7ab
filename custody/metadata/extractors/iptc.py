"""IPTC-NAA IIM 4.2 records, and the Photoshop image resource blocks (IRB) that carry them."""

from __future__ import annotations

from custody.metadata.extractors import xmp
from custody.metadata.extractors.collector import Collector

# IIM 4.2 chapter 6, the application record (2): the datasets that say who, where and when.
_RECORD_2 = {
    0: "ApplicationRecordVersion",
    5: "ObjectName",
    25: "Keywords",
    55: "DateCreated",
    60: "TimeCreated",
    62: "DigitalCreationDate",
    63: "DigitalCreationTime",
    65: "OriginatingProgram",
    80: "By-line",
    85: "By-lineTitle",
    90: "City",
    92: "Sub-location",
    95: "Province-State",
    100: "Country-PrimaryLocationCode",
    101: "Country-PrimaryLocationName",
    103: "OriginalTransmissionReference",
    105: "Headline",
    110: "Credit",
    115: "Source",
    116: "CopyrightNotice",
    118: "Contact",
    120: "Caption-Abstract",
    122: "Writer-Editor",
}
# Photoshop File Formats, "Image resource IDs".
_IRB_IPTC, _IRB_XMP = 0x0404, 0x0424
_IRB_NAMES = {0x0409: "ThumbnailImage", 0x040C: "ThumbnailImage", 0x040B: "URL"}
_IRB_SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")
_MAX_ITEMS = 10_000


def parse_irb(data: bytes, out: Collector) -> None:
    """Walk image resource blocks: signature, id, padded Pascal name, size, padded data."""
    at = 0
    for _ in range(_MAX_ITEMS):
        if data[at : at + 4] not in _IRB_SIGNATURES or at + 7 > len(data):
            return
        resource = int.from_bytes(data[at + 4 : at + 6], "big")
        name_length = data[at + 6]
        at += 6 + name_length + 1 + (name_length + 1) % 2  # the name is padded to even
        size = int.from_bytes(data[at : at + 4], "big")
        block, at = data[at + 4 : at + 4 + size], at + 4 + size + size % 2
        if resource == _IRB_IPTC:
            parse_iim(block, out)
        elif resource == _IRB_XMP:
            xmp.parse_packet(block, out)
        elif resource in _IRB_NAMES:
            out.add(f"IRB:{_IRB_NAMES[resource]}", f"<{len(block)} bytes>", literal=False)


def parse_iim(data: bytes, out: Collector) -> None:
    """Walk IIM datasets (IIM 4.2 §1.5): 0x1C, record, dataset, length, data."""
    at = 0
    for _ in range(_MAX_ITEMS):
        if at + 5 > len(data) or data[at] != 0x1C:
            return
        record, dataset = data[at + 1], data[at + 2]
        length, at = int.from_bytes(data[at + 3 : at + 5], "big"), at + 5
        if length & 0x8000:  # extended dataset (§1.5.2): the low bits count length octets
            octets = length & 0x7FFF
            length, at = int.from_bytes(data[at : at + octets], "big"), at + octets
        value, at = data[at : at + length], at + length
        name = _RECORD_2.get(dataset) if record == 2 else None
        out.add(f"IPTC:{name or f'{record}:{dataset}'}", _text(value))


def _text(value: bytes) -> str:
    # Record 1:90 names the character set; modern writers use UTF-8, old ones Latin-1.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
