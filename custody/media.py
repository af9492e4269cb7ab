"""Media type detection from content (magic bytes), never from names or declared types."""

from __future__ import annotations

import codecs
import mimetypes
import re
from collections.abc import Callable, Iterator

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 64 * 1024  # enough for every signature below, incl. a ZIP's first entries

Sniffer = Callable[[bytes], str | None]


def _prefix(signature: bytes, media_type: str, offset: int = 0) -> Sniffer:
    def sniff(head: bytes) -> str | None:
        return media_type if head[offset : offset + len(signature)] == signature else None

    return sniff


def _riff(head: bytes) -> str | None:
    if head[:4] != b"RIFF":
        return None
    return {b"WAVE": "audio/wav", b"WEBP": "image/webp", b"AVI ": "video/x-msvideo"}.get(head[8:12])


def _aiff(head: bytes) -> str | None:
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    return None


# ISO base media file format (ISO/IEC 14496-12): the 'ftyp' box's major and compatible brands.
_FTYP_BRANDS: dict[bytes, str] = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"qt  ": "video/quicktime",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
    b"crx ": "image/x-canon-cr3",
}


def _ftyp(head: bytes) -> str | None:
    if head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    if major in _FTYP_BRANDS:
        return _FTYP_BRANDS[major]
    brands = [head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    for brand in (b"avif", b"heic", b"mif1"):
        if brand in brands:
            return _FTYP_BRANDS[brand]
    # Generic brands (isom, mp42, ...) say nothing of the content: M4A/M4B files often carry
    # them, so an MP4 whose tracks are all sound (no 'vide' handler) is audio.
    handlers = _track_handlers(head)
    if b"soun" in handlers and b"vide" not in handlers:
        return "audio/mp4"
    return "video/mp4"


def _boxes(head: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Type, payload start and payload end of each box in head[start:end] (ISO 14496-12 §4.2)."""
    while start + 8 <= end:
        size = int.from_bytes(head[start : start + 4], "big")
        header = 8
        if size == 1:  # a 64-bit largesize follows the type
            size, header = int.from_bytes(head[start + 8 : start + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            size = end - start
        if size < header:
            return
        yield head[start + 4 : start + 8], start + header, min(start + size, end)
        start += size


def _track_handlers(head: bytes) -> set[bytes]:
    """Handler types ('soun', 'vide', ...) of the tracks whose moov box is within `head`."""
    spans = [(0, len(head))]
    for kind in (b"moov", b"trak", b"mdia", b"hdlr"):  # §8.4.3: moov/trak/mdia/hdlr
        spans = [(b, e) for s, e in spans for k, b, e in _boxes(head, s, e) if k == kind]
    # A handler box: version and flags (4 bytes), pre_defined (4), then handler_type (4).
    return {head[start + 8 : start + 12] for start, _ in spans}


def _ogg(head: bytes) -> str | None:
    if head[:4] != b"OggS":
        return None
    if b"OpusHead" in head[:64]:
        return "audio/ogg; codecs=opus"
    if b"\x80theora" in head[:64]:
        return "video/ogg"
    return "audio/ogg"


def _mp3(head: bytes) -> str | None:
    if head[:3] == b"ID3":
        return _behind_id3(head)
    # MPEG audio frame sync: 11 set bits, layer bits not 00 (ISO/IEC 11172-3 §2.4.2.3).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    return None


def _behind_id3(head: bytes) -> str:
    """What follows an ID3v2 tag: some encoders put one in front of FLAC, not only MP3."""
    if len(head) < 10:
        return "audio/mpeg"
    # ID3v2.4 §3.1: a 28-bit syncsafe size after the 10-byte header, plus a footer if flagged.
    size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    size += 10 if head[5] & 0x10 else 0
    if head[size : size + 4] == b"fLaC":
        return "audio/flac"
    return "audio/mpeg"


def _tiff(head: bytes) -> str | None:
    # Classic TIFF (version 42) and BigTIFF (version 43) in both byte orders.
    if head[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None
    if head[8:10] == b"CR":
        return "image/x-canon-cr2"
    return "image/tiff"


# OOXML (ECMA-376): the top folder of the package's parts names the kind of document.
_OOXML = {
    b"word": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# OPC (ECMA-376 Part 2): every package has these two parts, in any order (LibreOffice writes
# [Content_Types].xml after the document's parts, often beyond the sniffed window).
_OPC_PARTS = (b"[Content_Types].xml", b"_rels/.rels")
_PACKAGE_MIMETYPE = re.compile(rb"application/(?:vnd\.oasis\.opendocument\.[a-z.\-]+|epub\+zip)")


def _zip_entries(head: bytes) -> dict[bytes, bytes]:
    """Name -> first bytes of data of each ZIP local file header in `head` (APPNOTE §4.3.7)."""
    entries: dict[bytes, bytes] = {}
    for match in re.finditer(b"PK\x03\x04", head):
        at = match.start()
        name_length = int.from_bytes(head[at + 26 : at + 28], "little")
        extra_length = int.from_bytes(head[at + 28 : at + 30], "little")
        data = at + 30 + name_length + extra_length
        entries.setdefault(head[at + 30 : at + 30 + name_length], head[data : data + 80])
    return entries


def _zip(head: bytes) -> str | None:
    if head[:4] != b"PK\x03\x04":
        return None
    entries = _zip_entries(head)
    # ODF (ISO/IEC 26300 §3.3) and EPUB (OCF §4.3): an uncompressed "mimetype" entry names the
    # type. It should be the first entry, but tools that re-zip documents do not all keep it so.
    package = _PACKAGE_MIMETYPE.match(entries.get(b"mimetype", b""))
    if package:
        return package.group().decode()
    if any(part in entries for part in _OPC_PARTS):
        for name in entries:
            media_type = _OOXML.get(name.partition(b"/")[0])
            if media_type is not None:
                return media_type
    return "application/zip"


_SNIFFERS: tuple[Sniffer, ...] = (
    _prefix(b"\xff\xd8\xff", "image/jpeg"),
    _prefix(b"\x89PNG\r\n\x1a\n", "image/png"),
    _prefix(b"GIF87a", "image/gif"),
    _prefix(b"GIF89a", "image/gif"),
    _prefix(b"%PDF-", "application/pdf"),
    _prefix(b"fLaC", "audio/flac"),
    _prefix(b"#!AMR", "audio/amr"),
    _prefix(b"\x1a\x45\xdf\xa3", "video/webm"),
    _prefix(b"BM", "image/bmp"),
    _prefix(b"\x00\x00\x01\x00", "image/x-icon"),
    _prefix(b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    _prefix(b"\x1f\x8b", "application/gzip"),
    _prefix(b"Rar!\x1a\x07", "application/vnd.rar"),
    _prefix(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    _prefix(b"{\\rtf", "text/rtf"),
    _riff,
    _aiff,
    _ftyp,
    _ogg,
    _tiff,
    _zip,
    _mp3,
)


def detect_media_type(head: bytes) -> str:
    """The media type of content whose first bytes (up to `SNIFF_BYTES`) are `head`."""
    for sniff in _SNIFFERS:
        found = sniff(head)
        if found is not None:
            return found
    return _text_or_binary(head)


def _text_or_binary(head: bytes) -> str:
    if not head:
        return OCTET_STREAM
    if b"\x00" in head:
        return OCTET_STREAM
    try:
        # Not final: a multi-byte character cut at the end of the sniffed window is still text,
        # but an invalid byte anywhere, even among the last few, is not.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return OCTET_STREAM
    stripped = text.lstrip("\ufeff \t\r\n").lower()
    if stripped.startswith(("<?xml", "<svg")):
        return "image/svg+xml" if "<svg" in stripped[:1024] else "application/xml"
    if stripped.startswith(("<!doctype html", "<html")):
        return "text/html"
    return "text/plain"


_BUILTIN_TYPES = mimetypes.MimeTypes()  # Python's own table, whatever /etc/mime.types says


def extension_for(media_type: str) -> str:
    """A file extension for `media_type` (".bin" if none is known), for files with no name."""
    base = media_type.split(";", maxsplit=1)[0].strip()
    return _BUILTIN_TYPES.guess_extension(base) or ".bin"
