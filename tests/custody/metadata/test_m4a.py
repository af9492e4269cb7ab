"""M4A/M4B sharing copies: no user data, zeroed times, the same media data."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import mutagen.mp4
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.base import StripError
from custody.metadata.mp4audio import Mp4AudioStripper
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = Mp4AudioStripper()
CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf")


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("m4a", "m4b", "mp4")
    refused: ClassVar[dict[str, str]] = {
        "QuickTime.m4a": "'stco' table size does not match",  # ExifTool's sample: tables cut
        "64bit.mp4": "truncated",
        "truncated-64bit.mp4": "truncated",
        # Chapter titles are text samples in 'mdat', which a copy keeps byte for byte.
        "ep7.m4b": "not sound only (handler text)",
        "ep9.m4b": "not sound only (handler text)",
        "nero-chapters.m4b": "'stsz' is too short",  # cut short, and a text track too
    }


def boxes(data: bytes, start: int = 0, end: int = -1) -> Iterator[tuple[bytes, int, int]]:
    """Type, start and end of each box, depth first through the containers."""
    end = len(data) if end < 0 else end
    while start + 8 <= end:
        size, kind = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8]
        size = end - start if size == 0 else size
        yield kind, start, start + size
        if kind in CONTAINERS:
            yield from boxes(data, start + 8, start + size)
        start += size


def find(data: bytes, kind: bytes) -> list[tuple[int, int]]:
    return [(s, e) for k, s, e in boxes(data) if k == kind]


def chunk_offsets(data: bytes) -> list[int]:
    offsets: list[int] = []
    for start, _ in find(data, b"stco"):
        count = int.from_bytes(data[start + 12 : start + 16], "big")
        offsets += struct.unpack(f">{count}I", data[start + 16 : start + 16 + 4 * count])
    return offsets


def test_chunk_offsets_still_point_at_the_same_samples() -> None:
    original = checks.seed("has-tags.m4a")
    copy, _ = checks.strip_bytes(STRIPPER, original)
    pairs = list(zip(chunk_offsets(original), chunk_offsets(copy), strict=True))
    assert pairs
    assert all(original[a : a + 64] == copy[b : b + 64] for a, b in pairs)


def test_times_are_zero_and_user_data_and_handler_names_are_gone() -> None:
    copy, report = checks.strip_bytes(STRIPPER, checks.seed("covr-with-name.m4a"))
    for kind in (b"mvhd", b"tkhd", b"mdhd"):
        ((start, _),) = find(copy, kind)
        assert copy[start + 12 : start + 20] == bytes(8)  # version 0: two 32-bit times
    assert find(copy, b"udta") == find(copy, b"meta") == find(copy, b"free") == []
    assert all(copy[e - 1 : e] == b"\0" and e - s == 33 for s, e in find(copy, b"hdlr"))
    assert "moov/udta" in report.removed
    assert mutagen.mp4.MP4(io.BytesIO(copy)).tags is None


def faststart(data: bytes) -> bytes:
    """`data` (ftyp, mdat, moov) rewritten as ftyp, moov, mdat, its chunk offsets moved."""
    ((ftyp_end, _),) = [(e, s) for k, s, e in boxes(data) if k == b"ftyp"]
    ((mdat_start, mdat_end),) = find(data, b"mdat")
    ((moov_start, moov_end),) = find(data, b"moov")
    moov = bytearray(data[moov_start:moov_end])
    for start, _ in find(data, b"stco"):
        at = start - moov_start + 16
        count = int.from_bytes(moov[at - 4 : at], "big")
        old = struct.unpack(f">{count}I", moov[at : at + 4 * count])
        moov[at : at + 4 * count] = struct.pack(f">{count}I", *(o + len(moov) for o in old))
    return data[:ftyp_end] + bytes(moov) + data[mdat_start:mdat_end]


def test_offsets_move_when_moov_comes_first() -> None:
    original = faststart(checks.seed("has-tags.m4a"))
    copy, _ = checks.strip_bytes(STRIPPER, original)
    assert len(copy) < len(original)
    pairs = list(zip(chunk_offsets(original), chunk_offsets(copy), strict=True))
    assert all(original[a : a + 64] == copy[b : b + 64] for a, b in pairs)
    assert mutagen.mp4.MP4(io.BytesIO(copy)).info.length > 3


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"soun", b"vide", "not sound only"),
        (b"url \x00\x00\x00\x01", b"url \x00\x00\x00\x00", "outside the file"),
        (b"ftyp", b"moof", "fragmented"),
        (b"stsd", b"abcd", "unexpected box"),
    ],
)
def test_what_cannot_be_made_safe_is_refused(old: bytes, new: bytes, reason: str) -> None:
    original = checks.seed("has-tags.m4a")
    assert old in original
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, original.replace(old, new, 1))


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return (len(body) + 8).to_bytes(4, "big") + kind + body


ESDS = box(b"esds", bytes(4), bytes.fromhex("03190000000411400000000000000000000000000502121006"))


def sound_entry(*children: bytes, kind: bytes = b"mp4a", version: int = 0) -> bytes:
    """An audio sample entry (ISO/IEC 14496-12 §12.2.3): 2 channels, 16 bits, 44.1 kHz, with
    QuickTime's sound description fields of its version (16 bytes in 1, 36 in 2)."""
    fields = bytes(6) + (1).to_bytes(2, "big") + version.to_bytes(2, "big") + bytes(6)
    fields += struct.pack(">HHHHI", 2, 16, 0, 0, 44100 << 16)
    return box(kind, fields, bytes({0: 0, 1: 16, 2: 36}.get(version, 0)), *children)


def synthetic(chunks: int, *, stray: bytes = b"", entries: tuple[bytes, ...] = ()) -> bytes:
    """ftyp, mdat, moov of one sound track: `chunks` chunks of 256 samples of 4 bytes."""
    entries = entries or (sound_entry(ESDS),)
    ftyp = box(b"ftyp", b"M4A \0\0\0\0M4A isom")
    samples = b"\x5a" * (chunks * 1024)
    mdat = box(b"mdat", samples + stray)
    offsets = [len(ftyp) + 8 + i * 1024 for i in range(chunks)]
    full = bytes(4)  # version and flags
    stbl = box(
        b"stbl",
        box(b"stsd", full, len(entries).to_bytes(4, "big"), *entries),
        box(b"stts", full, (1).to_bytes(4, "big"), (chunks * 256).to_bytes(4, "big"), bytes(4)),
        box(b"stsc", full, struct.pack(">4I", 1, 1, 256, 1)),
        box(b"stsz", full, struct.pack(">2I", 4, chunks * 256)),
        box(b"stco", full, struct.pack(f">{chunks + 1}I", chunks, *offsets)),
    )
    dinf = box(b"dinf", box(b"dref", full, (1).to_bytes(4, "big"), box(b"url ", b"\0\0\0\1")))
    minf = box(b"minf", box(b"smhd", bytes(8)), dinf, stbl)
    hdlr = box(b"hdlr", full, bytes(4), b"soun", bytes(12), b"Alice's phone\0")
    mdia = box(
        b"mdia", box(b"mdhd", full, (3_000_000_000).to_bytes(4, "big"), bytes(16)), hdlr, minf
    )
    trak = box(b"trak", box(b"tkhd", full, bytes(80)), mdia)
    udta = box(b"udta", box(b"meta", full, box(b"ilst", b"Bob Recorder")))
    moov = box(b"moov", box(b"mvhd", full, bytes(96)), trak, udta)
    return ftyp + mdat + moov


def test_bytes_of_mdat_that_no_sample_claims_are_refused() -> None:
    copy, _ = checks.strip_bytes(STRIPPER, synthetic(4))
    assert b"Alice" not in copy
    assert b"Bob" not in copy
    with pytest.raises(StripError, match="12 bytes of 'mdat'"):
        checks.strip_bytes(STRIPPER, synthetic(4, stray=b"Carol's note"))


_ALAC = box(b"alac", bytes(28))
_CHAN = box(b"chan", bytes(12))
_WAVE = box(b"wave", box(b"frma", b"mp4a"), box(b"mp4a", bytes(4)), ESDS, box(bytes(4)))


@pytest.mark.parametrize(
    ("entry", "removed"),
    [
        (sound_entry(ESDS, box(b"udta", box(b"\xa9nam", b"Carol"))), "mp4a/udta"),
        (sound_entry(ESDS, box(b"btrt", bytes(12)), box(b"meta", bytes(4), b"Carol")), "mp4a/meta"),
        (sound_entry(_WAVE, box(b"free", b"Carol"), version=1), "mp4a/free"),
        (sound_entry(_ALAC, _CHAN, box(b"uuid", b"Carol"), kind=b"alac"), "alac/uuid"),
    ],
)  # fmt: skip
def test_tags_inside_a_sample_entry_go_and_its_decoder_boxes_stay(
    entry: bytes, removed: str
) -> None:
    copy, report = checks.strip_bytes(STRIPPER, synthetic(4, entries=(entry,)))
    assert b"Carol" not in copy
    assert f"moov/trak/mdia/minf/stbl/stsd/{removed}" in report.removed
    kept = [
        b for b in (ESDS, _WAVE, box(b"btrt", bytes(12)), box(b"alac", bytes(28))) if b in entry
    ]
    assert kept
    assert all(b in copy for b in kept)


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ((sound_entry(ESDS, box(b"cmnt", b"Carol")),), "unexpected box .*/stsd/mp4a/cmnt"),
        ((sound_entry(box(b"wave", box(b"frma", b"mp4a"), box(b"note", b"Carol"))),), "wave/note"),
        ((sound_entry(ESDS, kind=b"abcd"),), "sample entry 'abcd'"),
        ((sound_entry(ESDS, kind=b"enca"),), "sample entry 'enca'"),
        ((sound_entry(ESDS, version=3),), "sound description version 3"),
        ((box(b"mp4a", bytes(20)),), "stsd/mp4a is too short"),
    ],
)
def test_sample_entries_that_cannot_be_read_with_certainty_are_refused(
    entries: tuple[bytes, ...], reason: str
) -> None:
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, synthetic(4, entries=entries))


def test_a_sample_description_count_that_does_not_match_is_refused() -> None:
    original = synthetic(4, entries=(sound_entry(ESDS),))
    at = original.index(b"stsd") + 8
    damaged = original[:at] + (2).to_bytes(4, "big") + original[at + 4 :]
    with pytest.raises(StripError, match="entry count does not match"):
        checks.strip_bytes(STRIPPER, damaged)


def test_a_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.m4a"
    path.write_bytes(synthetic(8192))  # 8 MB of samples
    assert checks.peak_memory(STRIPPER, path, tmp_path / "copy.m4a") < 4 << 20


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("has-tags.m4a")
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), ["Test Artist", "FAAC 1.24"])
