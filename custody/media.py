"""Media type detection from content (magic bytes), never from names or declared types."""

from __future__ import annotations

import re
from collections.abc import Callable

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
    return "video/mp4"


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
        return "audio/mpeg"
    # MPEG audio frame sync: 11 set bits, layer bits not 00 (ISO/IEC 11172-3 §2.4.2.3).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    return None


def _tiff(head: bytes) -> str | None:
    if head[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    if head[8:10] == b"CR":
        return "image/x-canon-cr2"
    return "image/tiff"


_OOXML = {
    b"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_ODF_MIMETYPE = re.compile(
    rb"^PK\x03\x04.{26}mimetype(application/vnd\.oasis\.opendocument\.[a-z.\-]+)", re.S
)


def _zip(head: bytes) -> str | None:
    if head[:4] != b"PK\x03\x04":
        return None
    # ODF (ISO/IEC 26300 §3.3): the first entry is an uncompressed "mimetype" file.
    odf = _ODF_MIMETYPE.match(head)
    if odf:
        return odf.group(1).decode()
    if b"[Content_Types].xml" in head:
        for marker, media_type in _OOXML.items():
            if marker in head:
                return media_type
    if b"META-INF/mimetypeapplication/epub+zip" in head or b"mimetypeapplication/epub+zip" in head:
        return "application/epub+zip"
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
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed window is still text.
        if exc.start < len(head) - 3:
            return OCTET_STREAM
        text = head[: exc.start].decode("utf-8")
    stripped = text.lstrip("\ufeff \t\r\n").lower()
    if stripped.startswith(("<?xml", "<svg")):
        return "image/svg+xml" if "<svg" in stripped[:1024] else "application/xml"
    if stripped.startswith(("<!doctype html", "<html")):
        return "text/html"
    return "text/plain"
