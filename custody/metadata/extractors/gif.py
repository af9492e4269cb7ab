"""GIF (GIF89a specification) extensions: comments, plain text, application identifiers."""

from __future__ import annotations

from typing import BinaryIO

from custody.metadata.extractors.collector import Collector, LimitError

_IMAGE, _EXTENSION, _TRAILER = 0x2C, 0x21, 0x3B
_COMMENT, _PLAIN_TEXT, _APPLICATION = 0xFE, 0x01, 0xFF
_MAX_TEXT = 64 * 1024  # of one comment or plain text: more is not a caption
# Application extensions that are format, not metadata: loop counts and the ICC profile
# (kept in sharing copies), and XMP, which the XMP family reads field by field.
_FORMAT_APPLICATIONS = frozenset({b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012", b"XMP DataXMP"})


def extract_gif(fh: BinaryIO, out: Collector) -> None:
    """Comments as "GIF:Comment", drawn text as "GIF:PlainText", and the identifier of each
    application extension but the format's own as "GIF:Application"."""
    header = fh.read(13)
    if header[:6] not in (b"GIF87a", b"GIF89a") or len(header) < 13:
        return
    if header[10] & 0x80:
        fh.read(3 << ((header[10] & 7) + 1))
    walker = _Blocks(fh, out.limits.max_chunks)
    while (introducer := fh.read(1)) and introducer[0] != _TRAILER:
        if introducer[0] == _IMAGE:
            descriptor = fh.read(9)
            if len(descriptor) == 9 and descriptor[8] & 0x80:
                fh.read(3 << ((descriptor[8] & 7) + 1))
            fh.read(1)  # LZW minimum code size
            walker.skip()
        elif introducer[0] == _EXTENSION:
            label = fh.read(1)
            if label == bytes([_COMMENT]):
                out.add("GIF:Comment", walker.text())
            elif label == bytes([_PLAIN_TEXT]):
                out.add("GIF:PlainText", walker.text()[12:])  # after the 12-byte grid header
            elif label == bytes([_APPLICATION]):
                ident = walker.first()
                if ident not in _FORMAT_APPLICATIONS:
                    out.add("GIF:Application", ident.decode("latin-1"), literal=False)
                walker.skip()
            else:
                walker.skip()
        else:
            return  # not a block: damage; what was read stands


class _Blocks:
    """Data sub-blocks (a size byte, that many bytes; a zero size ends them), counted."""

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self._fh = fh
        self._left = limit

    def _next(self) -> bytes | None:
        self._left -= 1
        if self._left < 0:
            raise LimitError("too many GIF data sub-blocks")
        size = self._fh.read(1)
        if not size or not size[0]:
            return None
        return self._fh.read(size[0])

    def skip(self) -> None:
        while self._next() is not None:
            pass

    def first(self) -> bytes:
        """The first sub-block (an application identifier); the rest is left to `skip`."""
        return self._next() or b""

    def text(self) -> str:
        parts, length = [], 0
        while (block := self._next()) is not None:
            if length < _MAX_TEXT:
                parts.append(block)
                length += len(block)
        return b"".join(parts)[:_MAX_TEXT].decode("utf-8", "replace")
