"""Ogg Vorbis (Vorbis I §4.2) and Ogg Opus (RFC 7845 §5) sharing copies without user comments."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from custody.metadata.audio_common import Piece, Plan, PlannedStripper, Span, source_size
from custody.metadata.audio_oggpage import FIRST, LAST, Page, page_header, paginate, read_page
from custody.metadata.audio_tags import strip_trailing_tags
from custody.metadata.base import StripError
from custody.metadata.ogg_headers import check_opus_headers, check_vorbis_headers

_MAX_PACKET = 16 << 20  # identification and setup headers are kilobytes; more is not audio
_COMMENT_KEPT = 64 << 10  # of the comment packet only the vendor string is read


@dataclass(frozen=True, slots=True)
class _Codec:
    name: str
    headers: int  # header packets before the audio
    comment: bytes  # the comment packet's signature
    framing: bytes  # what ends an empty comment packet
    check: Callable[[Sequence[bytes]], None]  # the headers kept verbatim, read to their end


# Codecs by their identification packet's signature. Vorbis I §4.2.1-4.2.3: identification,
# comment and setup headers; RFC 7845 §5.1-5.2: OpusHead and OpusTags.
_CODECS = {
    b"\x01vorbis": _Codec("Vorbis", 3, b"\x03vorbis", b"\x01", check_vorbis_headers),
    b"OpusHead": _Codec("Opus", 2, b"OpusTags", b"", check_opus_headers),
}
_OTHERS = {b"\x7fFLAC": "FLAC", b"Speex   ": "Speex", b"\x80theora": "Theora video"}


@dataclass
class _Headers:
    """The header packets as read: whole, except the comment packet's first bytes only."""

    packets: list[bytearray] = field(default_factory=lambda: [bytearray()])
    complete: int = 0
    pages: int = 0
    codec: _Codec | None = None

    def add(self, segment: bytes, ends: bool) -> None:
        packet = self.packets[-1]
        limit = _COMMENT_KEPT if self.complete == 1 else _MAX_PACKET
        packet += segment[: max(0, limit - len(packet))]
        if len(packet) >= _MAX_PACKET:
            raise StripError("Ogg header packet too long")
        if ends:
            self.complete += 1
            self.packets.append(bytearray())
            if self.complete == 1:
                self.codec = _identify(bytes(self.packets[0]))

    def done(self) -> bool:
        return self.codec is not None and self.complete == self.codec.headers


def _identify(packet: bytes) -> _Codec:
    for signature, codec in _CODECS.items():
        if packet.startswith(signature):
            return codec
    for signature, name in _OTHERS.items():
        if packet.startswith(signature):
            raise StripError(f"{name} in Ogg is not supported")
    raise StripError("Ogg stream of an unknown codec")


def _read_headers(source: BinaryIO, end: int) -> tuple[_Headers, Page, int]:
    """The header packets, the first page (for its serial) and where the audio pages start."""
    headers, offset = _Headers(), 0
    first = read_page(source, 0, end)
    if first.flags & FIRST == 0:
        raise StripError("the first Ogg page does not begin a stream")
    while not headers.done():
        page = first if offset == 0 else read_page(source, offset, end)
        _check_same_stream(first, page, offset)
        body = memoryview(page.body)
        for length in page.lacing:
            if headers.done():
                raise StripError("audio begins on a header page (RFC 7845 §3, Vorbis I §4.2)")
            headers.add(bytes(body[:length]), length < 255)
            body = body[length:]
        if page is first and (headers.complete != 1 or headers.packets[-1]):
            raise StripError("the identification header does not have a page of its own")
        offset, headers.pages = offset + page.length, headers.pages + 1
    return headers, first, offset


def _check_same_stream(first: Page, page: Page, offset: int) -> None:
    # A second serial is a multiplexed or chained stream: another stream's headers, unread.
    if page.serial != first.serial or (page is not first and page.flags & FIRST):
        raise StripError(f"a second logical Ogg stream at offset {offset} (not supported)")


def _empty_comment(codec: _Codec, packet: bytes) -> bytes:
    """The comment header with the vendor string kept (it names the encoder) and no comments."""
    at = len(codec.comment)
    if not packet.startswith(codec.comment) or len(packet) < at + 4:
        raise StripError(f"malformed {codec.name} comment header")
    vendor_end = at + 4 + int.from_bytes(packet[at : at + 4], "little")
    if vendor_end > len(packet):
        raise StripError(f"{codec.name} vendor string runs past its header")
    return packet[:vendor_end] + bytes(4) + codec.framing


def _audio_pages(
    source: BinaryIO, first: Page, offset: int, end: int, delta: int
) -> Iterator[Piece]:
    """The audio pages, renumbered by `delta` and re-sealed; their bodies stay as they are."""
    ended = False
    while offset < end:
        page = read_page(source, offset, end)
        _check_same_stream(first, page, offset)
        if ended:
            raise StripError(f"Ogg page after the end of the stream at offset {offset}")
        ended = bool(page.flags & LAST)
        yield page_header(page, page.sequence + delta)
        yield Span(page.body_offset, len(page.body), content=True)
        offset += page.length


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    size = source_size(source)
    end = strip_trailing_tags(source, 0, size, removed)
    headers, first, audio_start = _read_headers(source, end)
    codec = headers.codec
    if codec is None:  # cannot be: reading stops once a codec's headers are complete
        raise StripError("Ogg stream of an unknown codec")
    packets = [bytes(p) for p in headers.packets[: codec.headers]]
    codec.check(packets)
    packets[1] = _empty_comment(codec, packets[1])
    pages = paginate(packets[:1], first.serial, 0, first=True)
    pages += paginate(packets[1:], first.serial, len(pages), first=False)
    removed.append(f"{codec.name} comments")
    delta = len(pages) - headers.pages
    audio = _audio_pages(source, first, audio_start, end, delta)
    return Plan(tuple(removed), _chain(list(pages), audio))


def _chain(head: list[Piece], tail: Iterator[Piece]) -> Iterator[Piece]:
    yield from head
    yield from tail


class OggStripper(PlannedStripper):
    """Keeps the codec headers and every audio page's body; the comment header is emptied."""

    name = "ogg"
    version = "1"
    media_types = frozenset({"audio/ogg", "audio/ogg; codecs=opus", "audio/opus"})
    content_kind = "ogg-audio-page-bodies"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
