"""GIF sharing copies (GIF89a specification, W3C 1990): a block allowlist, image data verbatim.

Kept byte for byte: the header, the logical screen and its colour table, every image (its
descriptor, local colour table and LZW data), the graphic control extensions (delays and
transparency), the NETSCAPE2.0/ANIMEXTS1.0 loop count and an ICC profile (ICCRGBG1012).
Dropped: comments, XMP, IPTC and Photoshop application extensions, any other application
extension, and whatever follows the trailer. A plain text extension is refused: it is text
the image shows, which a copy cannot drop and stay faithful, nor keep and stay clean.

The content digest covers the logical screen, the global colour table, the graphic control
extensions and the images, in order: the same bytes in the original and in its copy.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import BinaryIO

from custody.metadata.base import StripError, StripReport

_HEADERS = (b"GIF87a", b"GIF89a")
_IMAGE, _EXTENSION, _TRAILER = 0x2C, 0x21, 0x3B
_CONTROL, _COMMENT, _PLAIN_TEXT, _APPLICATION = 0xF9, 0xFE, 0x01, 0xFF
# Application extensions kept: animation loop counts, and the ICC profile of the colours.
_KEPT_APPLICATIONS = {b"NETSCAPE2.0": "loop count", b"ANIMEXTS1.0": "loop count"}
_ICC = b"ICCRGBG1012"
_NAMES = {b"XMP DataXMP": "XMP", b"MGKIPTC0000": "IPTC", b"MGK8BIM0000": "Photoshop IRB"}
MAX_BLOCKS = 1_000_000  # sub-blocks of 255 bytes: a 255 MB image; beyond, not a photo


class GifStripper:
    name = "gif"
    version = "gif/1"
    media_types = frozenset({"image/gif"})
    digests_both_sides = False

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        return _Walk(source, sink).run()

    def content_digest(self, source: BinaryIO) -> str:
        return _Walk(source, None).run().content_digest


class _Walk:
    """One pass over the blocks, writing what is kept to `sink` (None: digest only)."""

    def __init__(self, source: BinaryIO, sink: BinaryIO | None) -> None:
        self._source = source
        self._sink = sink
        self._digest = hashlib.sha256()
        self._removed: list[str] = []
        self._blocks = 0
        self._width = self._height = 0

    def run(self) -> StripReport:
        header = self._exact(13, "header and logical screen descriptor")
        if header[:6] not in _HEADERS:
            raise StripError("not a GIF: no GIF87a or GIF89a header")
        self._width, self._height = struct.unpack("<2H", header[6:10])
        self._emit(header[:6], digested=False)
        self._emit(header[6:])
        if header[10] & 0x80:  # global colour table
            self._emit(self._exact(3 << ((header[10] & 7) + 1), "global colour table"))
        images = 0
        while True:
            introducer = self._exact(1, "block introducer")[0]
            if introducer == _TRAILER:
                self._emit(b"\x3b", digested=False)
                break
            if introducer == _IMAGE:
                self._image()
                images += 1
            elif introducer == _EXTENSION:
                self._extension()
            else:
                raise StripError(f"unknown GIF block introducer 0x{introducer:02x}")
        if self._source.read(1):
            self._removed.append("data after the trailer")
        if images == 0:
            raise StripError("a GIF without an image")
        return StripReport(tuple(dict.fromkeys(self._removed)), self._digest.hexdigest(), "gif")

    def _image(self) -> None:
        descriptor = self._exact(9, "image descriptor")
        left, top, width, height = struct.unpack("<4H", descriptor[:8])
        if not width or not height or left + width > self._width or top + height > self._height:
            raise StripError(
                f"an image of {width}x{height} at ({left}, {top}) outside the "
                f"{self._width}x{self._height} screen"
            )
        self._emit(b"\x2c" + descriptor)
        if descriptor[8] & 0x80:  # local colour table
            self._emit(self._exact(3 << ((descriptor[8] & 7) + 1), "local colour table"))
        code_size = self._exact(1, "LZW minimum code size")
        if not 2 <= code_size[0] <= 8:
            raise StripError(f"LZW minimum code size {code_size[0]} is not 2 to 8")
        self._emit(code_size)
        decoder = LzwCheck(code_size[0], width * height)
        for block in self._sub_blocks("image data"):
            decoder.feed(block[1:])
            self._emit(block)
        decoder.finish()

    def _extension(self) -> None:
        label = self._exact(1, "extension label")[0]
        if label == _CONTROL:
            blocks = list(self._sub_blocks("graphic control extension"))
            if len(blocks) != 2 or len(blocks[0]) != 5 or blocks[0][0] != 4:
                raise StripError("a graphic control extension that is not 4 bytes")
            self._emit(bytes([_EXTENSION, _CONTROL]) + b"".join(blocks))
        elif label == _APPLICATION:
            self._application()
        elif label == _COMMENT:
            self._drop("comment")
        elif label == _PLAIN_TEXT:
            raise StripError("a plain text extension: text drawn over the image", found=("text",))
        else:
            self._drop(f"extension 0x{label:02x}")

    def _application(self) -> None:
        blocks = self._sub_blocks("application extension")
        first = next(blocks)
        if len(first) != 12 or first[0] != 11:
            raise StripError("an application extension without its 11-byte identifier")
        ident = bytes(first[1:])
        if ident in _KEPT_APPLICATIONS or ident == _ICC:
            rest = list(blocks)
            _check_kept(ident, rest)
            self._emit(bytes([_EXTENSION, _APPLICATION]) + first + b"".join(rest), digested=False)
            return
        self._removed.append(f"application extension {_NAMES.get(ident, _printable(ident))}")
        for _ in blocks:
            pass

    def _drop(self, name: str) -> None:
        self._removed.append(name)
        for _ in self._sub_blocks(name):
            pass

    def _sub_blocks(self, what: str) -> Iterator[bytes]:
        """Each sub-block with its size byte, the terminator (a zero size) last."""
        while True:
            self._blocks += 1
            if self._blocks > MAX_BLOCKS:
                raise StripError(f"more than {MAX_BLOCKS} GIF data sub-blocks")
            size = self._exact(1, what)
            data = self._exact(size[0], what) if size[0] else b""
            yield size + data
            if not size[0]:
                return

    def _exact(self, count: int, what: str) -> bytes:
        data = self._source.read(count)
        if len(data) != count:
            raise StripError(f"GIF cut short in its {what}")
        return data

    def _emit(self, data: bytes, *, digested: bool = True) -> None:
        if digested:
            self._digest.update(data)
        if self._sink is not None:
            self._sink.write(data)


def _check_kept(ident: bytes, blocks: list[bytes]) -> None:
    """A kept extension must be exactly what its name says: otherwise the blocks after it
    (an XMP packet, say) could be read as its sub-blocks and ride into the copy."""
    if ident in _KEPT_APPLICATIONS:
        # One sub-block: id 1 and a 16-bit loop count (or id 2 and a 32-bit buffer size).
        loop = len(blocks) == 2 and blocks[0][:2] == b"\x03\x01" and len(blocks[0]) == 4
        buffer = len(blocks) == 2 and blocks[0][:2] == b"\x05\x02" and len(blocks[0]) == 6
        if not (loop or buffer):
            raise StripError(f"a {ident.decode()} extension that is not a loop count")
        return
    profile = b"".join(block[1:] for block in blocks)
    if len(profile) < 128 or int.from_bytes(profile[:4], "big") != len(profile):
        raise StripError("an ICC profile extension whose length is not the profile's")
    if profile[36:40] != b"acsp":  # ICC.1 §7.2.9: the profile file signature
        raise StripError("an ICC profile extension without the profile signature")


def _printable(ident: bytes) -> str:
    text = ident.decode("latin-1")
    return text if text.isprintable() and text.isascii() else ident.hex()


class LzwCheck:
    """Decodes an image's LZW codes (GIF89a Appendix F) only to count the pixels they make:
    data that is not a whole image of its descriptor's size (damage, or other bytes read as
    an image) is refused rather than copied on unread."""

    def __init__(self, min_size: int, pixels: int) -> None:
        self._clear = 1 << min_size
        self._min_size = min_size
        self._pixels = pixels
        self._made = 0
        self._bits = 0
        self._count = 0  # bits held in _bits
        self._lengths: list[int] = []
        self._previous: int | None = None
        self._ended = False
        self._reset()

    def _reset(self) -> None:
        self._lengths = [1] * self._clear + [0, 0]  # the roots, then clear and end codes
        self._size = self._min_size + 1
        self._previous = None

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self._ended:
                if byte:
                    raise StripError("image data after the LZW end code")
                continue
            self._bits |= byte << self._count
            self._count += 8
            while self._count >= self._size and not self._ended:
                code = self._bits & ((1 << self._size) - 1)
                self._bits >>= self._size
                self._count -= self._size
                self._code(code)

    def _code(self, code: int) -> None:
        if code == self._clear:
            self._reset()
            return
        if code == self._clear + 1:
            self._ended = True
            return
        lengths = self._lengths
        if self._previous is None:
            if code >= self._clear:
                raise StripError("an LZW stream that starts with an undefined code")
            length = 1
        elif code < len(lengths):
            length = lengths[code]
            if len(lengths) < 4096:
                lengths.append(lengths[self._previous] + 1)
        elif code == len(lengths) and len(lengths) < 4096:
            length = lengths[self._previous] + 1
            lengths.append(length)
        else:
            raise StripError(f"LZW code {code} is not yet defined")
        self._previous = code
        self._made += length
        if self._made > self._pixels:
            raise StripError("LZW data for more pixels than the image has")
        if len(lengths) == 1 << self._size and self._size < 12:
            self._size += 1

    def finish(self) -> None:
        if self._made != self._pixels:
            raise StripError(f"LZW data for {self._made} of the image's {self._pixels} pixels")
