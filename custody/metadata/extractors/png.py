"""PNG (ISO/IEC 15948, W3C PNG 3rd ed.) text chunks: tEXt, zTXt, iTXt, tIME; embedded XMP."""

from __future__ import annotations

import binascii
import io
import zlib
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO

from custody.metadata.extractors import exif, iptc, xmp
from custody.metadata.extractors.collector import Collector, LimitError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME"})
_MAX_TEXT = 8 * 1024 * 1024  # compressed or not: larger text chunks are not metadata
_MAX_TOTAL_TEXT = 64 * 1024 * 1024  # read and inflated, over all text chunks
_XMP_KEYWORD = "XML:com.adobe.xmp"  # §11.3.3.5 / XMP Specification Part 3 §1.1.5
_RAW_PROFILE = "Raw profile type "  # ImageMagick: a hex dump of an EXIF, IPTC or XMP block


def extract_png(fh: BinaryIO, out: Collector) -> None:
    """Text chunks as "PNG:<chunk>/<keyword>", chunk types present as "PNG:Chunks"."""
    ancillary: dict[str, None] = {}
    text_left = _MAX_TOTAL_TEXT
    for kind, data in _chunks(fh, out.limits.max_chunks):
        if not kind[0] & 0x20:  # an uppercase first letter: a critical chunk (§5.4)
            continue
        ancillary[kind.decode("latin-1")] = None
        if data is None:
            continue
        if kind == b"tIME" and len(data) == 7:
            year, month, day, hour, minute, second = int.from_bytes(data[:2], "big"), *data[2:]
            out.add("PNG:tIME", f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
        elif kind != b"tIME":
            keyword, text = _text_chunk(kind, data)
            text_left -= len(data) + len(text)
            if text_left < 0:
                raise LimitError(f"more than {_MAX_TOTAL_TEXT} bytes of text chunks")
            _keyword(f"PNG:{kind.decode()}/{keyword}", keyword, text, out)
    if ancillary:
        out.add("PNG:Chunks", " ".join(ancillary), literal=False)


def _keyword(name: str, keyword: str, text: str, out: Collector) -> None:
    if keyword == _XMP_KEYWORD:
        out.guard("xmp", partial(xmp.parse_packet, text.encode("utf-8"), out))
    elif keyword.startswith(_RAW_PROFILE):
        out.guard("png", partial(_raw_profile, keyword[len(_RAW_PROFILE) :], text, out))
    else:
        out.add(name, text)


def _chunks(fh: BinaryIO, max_chunks: int) -> Iterator[tuple[bytes, bytes | None]]:
    """(type, data) of each chunk: data only for text chunks, read up to `_MAX_TEXT`."""
    if fh.read(8) != _SIGNATURE:
        return
    for _ in range(max_chunks):
        header = fh.read(8)
        if len(header) < 8 or header[4:] == b"IEND":
            return
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        if kind in _TEXT_CHUNKS and length <= _MAX_TEXT:
            yield kind, fh.read(length)
            fh.seek(4, io.SEEK_CUR)  # the CRC
        else:
            yield kind, None
            fh.seek(length + 4, io.SEEK_CUR)
    raise LimitError(f"more than {max_chunks} PNG chunks")


def _text_chunk(kind: bytes, data: bytes) -> tuple[str, str]:
    """Keyword and text of tEXt (§11.3.3.3), zTXt (§11.3.3.4) and iTXt (§11.3.3.5)."""
    keyword, _, rest = data.partition(b"\x00")
    if kind == b"tEXt":
        return keyword.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":
        return keyword.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
    compressed, language_and_rest = rest[:1] == b"\x01", rest[2:]
    _language, _, rest = language_and_rest.partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    return keyword.decode("latin-1"), (_inflate(text) if compressed else text).decode(
        "utf-8", "replace"
    )


def _inflate(data: bytes) -> bytes:
    """zlib data, inflated to at most `_MAX_TEXT` bytes (png_decompression_dos.png)."""
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, _MAX_TEXT)
    if inflater.unconsumed_tail:
        raise LimitError(f"compressed text expands beyond {_MAX_TEXT} bytes")
    return text


def _raw_profile(profile: str, text: str, out: Collector) -> None:
    """ImageMagick's "\\n<name>\\n<length>\\n<hex>" profiles: EXIF, IPTC/8BIM or XMP blocks."""
    _name, length, *lines = text.strip().split("\n") or [""]
    block = binascii.unhexlify("".join(lines).replace(" ", "").strip())[: int(length)]
    if profile in ("exif", "APP1") and block.startswith(b"Exif\x00\x00"):
        exif.extract_exif(out.reader(block[6:]), out)
    elif profile == "xmp":
        xmp.parse_packet(block, out)
    elif profile in ("iptc", "8bim"):
        (iptc.parse_irb if block.startswith(b"8BIM") else iptc.parse_iim)(block, out)
    else:
        out.add(f"PNG:{_RAW_PROFILE}{profile}", f"<{len(block)} bytes>", literal=False)
