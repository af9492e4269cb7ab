"""M4A/M4B sharing copies (ISO/IEC 14496-12, 14496-14): no tags, zeroed times, same 'mdat'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from custody.metadata import audio_mp4box as boxes
from custody.metadata.audio_common import (
    Piece,
    Plan,
    PlannedStripper,
    Span,
    printable,
    read_at,
    source_size,
)
from custody.metadata.audio_mp4entries import sample_descriptions
from custody.metadata.audio_mp4samples import moov_extents, uncovered
from custody.metadata.base import StripError

_MAX_MOOV = 64 << 20  # sample tables of a day-long recording are a few MB; moov is read whole

# Sample tables are numbers only (§8.5-8.9); stco/co64 are rewritten because 'moov' shrinks.
_SAMPLE_TABLES = b"stts ctts cslg stss stps sdtp stsc stsz stz2 sgpd sbgp subs padb".split()
_STBL: dict[bytes, boxes.Rule] = dict.fromkeys(_SAMPLE_TABLES, boxes.verbatim)
_STBL |= {b"stco": boxes.chunk_offsets, b"co64": boxes.chunk_offsets64}
_STBL[b"stsd"] = sample_descriptions  # the entries' fields, and an allowlist of their boxes
_MINF: dict[bytes, boxes.Rule] = {
    b"smhd": boxes.verbatim,
    b"hdlr": boxes.blank_name,  # QuickTime's data handler
    b"dinf": boxes.container({b"dref": boxes.self_contained_refs}),
    b"stbl": boxes.container(_STBL),
}
_MDIA: dict[bytes, boxes.Rule] = {
    b"mdhd": boxes.zero_times,
    b"hdlr": boxes.blank_name,
    b"minf": boxes.container(_MINF),
}


def _sound_media(payload: memoryview, context: boxes.Context, path: str) -> bytes:
    """mdia of a sound track only: a text track's samples (chapter titles) sit in 'mdat',
    which is kept byte for byte, so such a file cannot be made safe here."""
    handlers = [bytes(b[8:12]) for kind, b in boxes.children(payload, path) if kind == b"hdlr"]
    if handlers != [b"soun"]:
        found = ", ".join(printable(h) for h in handlers) or "none"
        raise StripError(f"a track that is not sound only (handler {found})")
    return boxes.rebuild(payload, _MDIA, context, path)


_TRAK: dict[bytes, boxes.Rule] = {
    b"tkhd": boxes.zero_times,
    b"tref": boxes.verbatim,  # track ids only
    b"edts": boxes.container({b"elst": boxes.verbatim}),
    b"mdia": _sound_media,
}
_MOOV: dict[bytes, boxes.Rule] = {
    b"mvhd": boxes.zero_times,
    b"iods": boxes.verbatim,  # profile levels only (14496-14 §5.1)
    b"trak": boxes.container(_TRAK),
}
_FRAGMENTED = frozenset({b"moof", b"mfra", b"sidx", b"styp", b"ssix", b"emsg"})


@dataclass(frozen=True, slots=True)
class _Box:
    kind: bytes
    start: int
    header: int
    size: int


def _top_level(source: BinaryIO, size: int) -> list[_Box]:
    found, at = [], 0
    while at < size:
        head = read_at(source, at, min(16, size - at), "box header")
        length, kind, header = int.from_bytes(head[:4], "big"), head[4:8], 8
        if length == 1 and len(head) == 16:
            length, header = int.from_bytes(head[8:16], "big"), 16
        elif length == 0:  # the last box may run to the end of the file
            length = size - at
        if len(head) < 8 or length < header or at + length > size:
            raise StripError(f"top-level box {printable(kind)!r} at {at} is truncated")
        found.append(_Box(kind, at, header, length))
        at += length
    return found


def _keep(top: list[_Box], removed: list[str]) -> list[_Box]:
    kept = []
    for item in top:
        if item.kind in (b"ftyp", b"moov", b"mdat"):
            kept.append(item)
        elif item.kind in boxes.DROPPED:
            removed.append(printable(item.kind))
        elif item.kind in _FRAGMENTED:
            raise StripError("fragmented MP4 is not supported")
        else:
            raise StripError(f"unexpected top-level box {printable(item.kind)!r}")
    if [b.kind for b in kept].count(b"moov") != 1:
        raise StripError("not exactly one 'moov' box")
    return kept


def _moov(payload: bytes, context: boxes.Context) -> bytes:
    return boxes.box(b"moov", boxes.rebuild(memoryview(payload), _MOOV, context, "moov"))


def _remapper(kept: list[_Box], moov_length: int) -> boxes.Context:
    """Where each 'mdat' payload lands once 'moov' has its new length, as an offset map."""
    moves, position = [], 0
    for item in kept:
        if item.kind == b"mdat":
            moves.append((item.start + item.header, item.start + item.size, position + item.header))
        position += moov_length if item.kind == b"moov" else item.size

    def remap(offset: int) -> int:
        for old_start, old_end, new_start in moves:
            if old_start <= offset <= old_end:
                return offset - old_start + new_start
        raise StripError(f"a chunk offset ({offset}) points outside the media data")

    return boxes.Context(remap)


def _check_coverage(moov: bytes, kept: list[_Box]) -> None:
    # Bytes of 'mdat' that no sample claims are not audio: stale data of an earlier edit,
    # or anything a muxer put there. The copy keeps 'mdat' whole, so such a file is refused.
    extents = moov_extents(memoryview(moov))
    media = [(b.start + b.header, b.start + b.size) for b in kept if b.kind == b"mdat"]
    for start, end in media:
        gap = uncovered(extents, start, end)
        if gap:
            raise StripError(f"{gap} bytes of 'mdat' at {start} are no track's samples")
    for offset, length in extents:
        if not any(start <= offset and offset + length <= end for start, end in media):
            raise StripError(f"a chunk at {offset} lies outside the media data")


def _plan(source: BinaryIO) -> Plan:
    removed: list[str] = []
    kept = _keep(_top_level(source, source_size(source)), removed)
    moov = next(item for item in kept if item.kind == b"moov")
    if moov.size > _MAX_MOOV:
        raise StripError("'moov' box too large")
    payload = read_at(source, moov.start + moov.header, moov.size - moov.header, "moov")
    _check_coverage(payload, kept)
    # The rebuilt moov's length does not depend on the offsets in it: size it, then remap.
    length = len(_moov(payload, boxes.Context(lambda offset: offset)))
    context = _remapper(kept, length)
    new_moov = _moov(payload, context)
    pieces: list[Piece] = []
    for item in kept:
        if item.kind == b"moov":
            pieces.append(new_moov)
        elif item.kind == b"mdat":
            media = Span(item.start + item.header, item.size - item.header, content=True)
            pieces += [Span(item.start, item.header), media]
        else:
            pieces.append(Span(item.start, item.size))
    return Plan(tuple(removed + context.removed), pieces)


class Mp4AudioStripper(PlannedStripper):
    """Keeps 'ftyp', a 'moov' of sound tracks without user data, and every 'mdat' unchanged."""

    name = "mp4audio"
    version = "2"
    media_types = frozenset({"audio/mp4", "audio/x-m4a", "audio/x-m4b"})
    content_kind = "mp4-mdat-payloads"

    def plan(self, source: BinaryIO) -> Plan:
        return _plan(source)
