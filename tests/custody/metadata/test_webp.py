"""Tests for custody.metadata.webp: synthetic RIFF layouts, the corpus, and mutated files."""

from __future__ import annotations

import io
import os
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from custody.metadata.base import StripError, Stripper
from custody.metadata.webp import WebpStripper
from tests.custody.metadata.strip_checks import (
    EDITS,
    Batch,
    Edit,
    apply_edits,
    assert_digests,
    assert_fixed_points,
    assert_no_leaks,
    check_mutant,
    corpus_files,
    decode,
    digest_of,
    exiftool_mutants,
    fixed_point,
    leaks,
    peak_memory,
    rel,
    run_batch,
    seed_needles,
    strip_bytes,
)

STRIPPER: Stripper = WebpStripper()  # mypy checks the protocol
FILES = corpus_files(".webp")
SECRETS = (b"SN-0042-XYZ", b"Jane Witness", b"CustodyCam", b"Kyiv safehouse")
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b"<x:xmpmeta><dc:creator>Jane Witness</dc:creator></x:xmpmeta>"


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[0x0112] = orientation
    tags[0x010F] = "CustodyCam"
    tags.get_ifd(0x8769)[0xA431] = "SN-0042-XYZ"
    return tags.tobytes()


def picture(*, orientation: int = 3, frames: int = 1, lossless: bool = False) -> bytes:
    """A WebP as a messenger app writes it: Exif with a serial, XMP with an author, ICC."""
    images = [Image.new("RGBA", (30, 20), (40 * i, 90, 200, 160)) for i in range(frames)]
    images[0].putpixel((2, 3), (255, 255, 0, 255))
    out = io.BytesIO()
    images[0].save(
        out, "WEBP", exif=exif(orientation), xmp=XMP, icc_profile=ICC, lossless=lossless,
        **({"save_all": True, "append_images": images[1:]} if frames > 1 else {}),
    )  # fmt: skip
    return out.getvalue()


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def parse(data: bytes, start: int = 12, end: int | None = None) -> list[tuple[bytes, bytes]]:
    found, at, end = [], start, len(data) if end is None else end
    while at < end:
        fourcc, size = struct.unpack("<4sI", data[at : at + 8])
        found.append((fourcc, data[at + 8 : at + 8 + size]))
        at += 8 + size + (size & 1)
    return found


def rebuild(data: bytes, change: object) -> bytes:
    """The file with its chunk list passed through `change`, RIFF size fixed."""
    assert callable(change)
    return riff(*(chunk(fourcc, payload) for fourcc, payload in change(parse(data))))


# --- synthetic files ---------------------------------------------------------------------


@pytest.mark.parametrize("lossless", [False, True])
def test_a_shared_picture_loses_exif_and_xmp_but_not_pixels_or_rotation(lossless: bool) -> None:
    original = picture(lossless=lossless)
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"EXIF", "XMP"} <= set(report.removed)
    assert decode(copy) == decode(original)
    assert decode(copy).icc == ICC
    assert Image.open(io.BytesIO(copy)).getexif() == {0x0112: 3}
    assert struct.unpack("<I", copy[4:8])[0] == len(copy) - 8
    assert report.content_digest == digest_of(STRIPPER, original) == digest_of(STRIPPER, copy)
    fixed_point(STRIPPER, copy)


def test_vp8x_flags_follow_what_is_kept() -> None:
    copy, _ = strip_bytes(STRIPPER, picture(orientation=1))
    vp8x = dict(parse(copy))[b"VP8X"]
    assert vp8x[0] == 0x20 | 0x10  # ICC and alpha; no Exif, no XMP
    assert b"EXIF" not in copy


def test_animation_survives_and_unknown_frame_chunks_are_dropped() -> None:
    def hide_in_frames(chunks: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [
            (fourcc, payload + chunk(b"SECR", b"Jane Witness") if fourcc == b"ANMF" else payload)
            for fourcc, payload in chunks
        ]

    original = rebuild(picture(frames=3), hide_in_frames)
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert "ANMF/SECR" in report.removed
    assert decode(copy) == decode(original)
    assert len(decode(copy).frames) == 3
    assert Image.open(io.BytesIO(copy)).getexif() == {0x0112: 3}


def test_unknown_chunks_and_data_after_riff_are_dropped() -> None:
    original = rebuild(picture(), lambda c: [*c, (b"ZZZZ", b"Kyiv safehouse")]) + b"Jane Witness"
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"ZZZZ", "data after RIFF"} <= set(report.removed)


def _second_bitstream(chunks: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [*chunks, next(c for c in chunks if c[0] == b"VP8 ")]


def _vp8x_last(chunks: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [*chunks[1:], chunks[0]]


def _exif_as_vp8(chunks: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(b"VP8 " if f == b"EXIF" else f, p) for f, p in chunks if f != b"VP8 "]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[:-10], "shorter than its RIFF size"),
        (lambda d: b"RIFX" + d[4:], "bad RIFF header"),
        (lambda d: rebuild(d, _second_bitstream), "exactly one"),
        (lambda d: rebuild(d, _vp8x_last), "VP8X"),
        (lambda d: rebuild(d, _exif_as_vp8), "malformed"),
        (lambda d: d[:12] + b"VP8X" + struct.pack("<I", 1 << 20) + d[20:], "overruns"),
    ],
)
def test_damaged_structure_is_refused(damage: object, reason: str) -> None:
    assert callable(damage)
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, damage(picture()))


class _Pipe(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_a_stream_that_cannot_seek_is_refused() -> None:
    with pytest.raises(StripError, match="seekable"):
        STRIPPER.strip(_Pipe(picture()), io.BytesIO())


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.webp"
    Image.frombytes("RGB", (1400, 1000), os.urandom(1400 * 1000 * 3)).save(path, quality=100)
    assert path.stat().st_size > 1_000_000
    assert peak_memory(STRIPPER, path) < 400_000


# --- the corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(STRIPPER, FILES, tmp_path_factory.mktemp("webp"))


def test_every_corpus_file_is_stripped(batch: Batch) -> None:
    assert batch.refused() == {}
    assert len(batch.stripped) == len(FILES)


def test_exiftool_finds_no_metadata_in_any_copy(batch: Batch) -> None:
    assert_no_leaks(batch)
    assert sum(bool(leaks(batch.tags[o.source])) for o in batch.stripped) >= 4


def test_content_digest_is_the_same_on_original_and_copy(batch: Batch) -> None:
    assert_digests(batch, STRIPPER)


def test_copies_decode_to_the_same_pixels_and_icc_profile(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        original = decode(outcome.source.read_bytes())
        assert decode(outcome.copy.read_bytes()) == original, rel(outcome.source)


def test_rotation_survives_and_nothing_else_of_exif(batch: Batch) -> None:
    rotated = 0
    for outcome in batch.stripped:
        assert outcome.copy is not None
        before = batch.tags[outcome.source].get("IFD0:Orientation")
        after = batch.tags[outcome.copy].get("IFD0:Orientation")
        assert after == (before if before in range(2, 9) else None), rel(outcome.source)
        rotated += after is not None
    assert rotated == 1  # hopper_orientation_2.webp


def test_copies_end_at_their_riff_size_and_are_fixed_points(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        copy = outcome.copy.read_bytes()
        assert struct.unpack("<I", copy[4:8])[0] == len(copy) - 8
    assert_fixed_points(batch, STRIPPER)


# --- mutated files -----------------------------------------------------------------------

SEEDS = [picture(), picture(frames=2, lossless=True)] + [p.read_bytes() for p in FILES]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    found = seed_needles(SEEDS, tmp_path_factory.mktemp("webp-seeds"), ".webp")
    return [[*needles, *SECRETS] for needles in found]


@settings(max_examples=150, deadline=timedelta(seconds=2))
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_mutants_are_stripped_clean_or_refused(
    secrets: list[list[bytes]], index: int, edits: list[Edit]
) -> None:
    stripped = check_mutant(STRIPPER, apply_edits(SEEDS[index], edits), secrets[index])
    event("stripped" if stripped else "refused")


def test_exiftool_finds_no_metadata_in_copies_of_mutants(tmp_path: Path) -> None:
    assert exiftool_mutants(STRIPPER, SEEDS, tmp_path, ".webp") == {}
