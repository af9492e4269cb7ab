"""Which bytes of an MP4's 'mdat' the sample tables claim (ISO/IEC 14496-12 §8.7.3-8.7.5)."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator

from custody.metadata.audio_mp4box import children
from custody.metadata.base import StripError

Extent = tuple[int, int]  # file offset and length of one chunk of samples


def _stbls(moov: memoryview) -> Iterator[memoryview]:
    """Each track's sample table box: moov/trak/mdia/minf/stbl."""
    level = [moov]
    for step in (b"trak", b"mdia", b"minf", b"stbl"):
        level = [body for box in level for kind, body in children(box, "moov") if kind == step]
    yield from level


def _full_box_table(body: memoryview, code: str, width: int, what: str) -> array[int]:
    """A table after version, flags and entry count, as machine integers (4 or 8 bytes each,
    not Python objects: a day's recording has millions of samples)."""
    count = int.from_bytes(body[4:8], "big") if len(body) >= 8 else -1
    if count < 0 or len(body) != 8 + count * width:
        raise StripError(f"'{what}' table size does not match its entry count")
    table = array(code)
    table.frombytes(body[8:])
    if sys.byteorder == "little":
        table.byteswap()
    return table


def _sizes(stsz: memoryview) -> tuple[int, int, array[int]]:
    """stsz (§8.7.3.2): one size for all samples (and their count), or a size per sample."""
    if len(stsz) < 12:
        raise StripError("'stsz' is too short")
    size, count = int.from_bytes(stsz[4:8], "big"), int.from_bytes(stsz[8:12], "big")
    if size:
        return size, count, array("I")
    return 0, count, _full_box_table(stsz[4:], "I", 4, "stsz")


def chunk_extents(stbl: memoryview) -> list[Extent]:
    """The byte range of every chunk: its offset, and the sizes of the samples stsc puts in it."""
    tables = dict(children(stbl, "stbl"))
    if b"stz2" in tables or b"stsz" not in tables or b"stsc" not in tables:
        raise StripError("a track without 'stsz' and 'stsc' sample tables")
    if b"stco" in tables:
        offsets = _full_box_table(tables[b"stco"], "I", 4, "stco")
    elif b"co64" in tables:
        offsets = _full_box_table(tables[b"co64"], "Q", 8, "co64")
    else:
        raise StripError("a track without chunk offsets")
    runs = _full_box_table(tables[b"stsc"], "I", 12, "stsc")  # first chunk, samples, entry
    size, samples, sizes = _sizes(tables[b"stsz"])
    extents, sample, run = [], 0, 0
    for chunk, offset in enumerate(offsets, start=1):
        while 3 * (run + 1) < len(runs) and runs[3 * (run + 1)] <= chunk:
            run += 1
        count = runs[3 * run + 1] if runs and runs[3 * run] <= chunk else 0
        length = size * count if size else sum(sizes[sample : sample + count])
        extents.append((offset, length))
        sample += count
    if sample != samples:
        raise StripError(f"the chunks hold {sample} samples, 'stsz' lists {samples}")
    return extents


def moov_extents(moov: memoryview) -> list[Extent]:
    return [extent for stbl in _stbls(moov) for extent in chunk_extents(stbl)]


def uncovered(extents: list[Extent], start: int, end: int) -> int:
    """How many bytes of [start, end) no extent covers (bytes that are no track's samples)."""
    missing, cursor = 0, start
    for offset, length in sorted(extents):
        if offset + length <= cursor or offset >= end:
            continue
        missing += max(0, offset - cursor)
        cursor = max(cursor, min(offset + length, end))
    return missing + (end - cursor)
