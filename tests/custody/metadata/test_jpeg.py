"""Tests for custody.metadata.jpeg: synthetic segment layouts, the corpus, and mutated files."""

from __future__ import annotations

import io
import random
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from custody.metadata.base import StripError, Stripper
from custody.metadata.jpeg import JpegStripper
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

STRIPPER: Stripper = JpegStripper()  # mypy checks the protocol
FILES = corpus_files(".jpg", ".jpeg")
# Corpus files refused, and why: each is damaged (see SOURCES.md).
REFUSED = {"exif-samples/jpg/corrupted.jpg": "implausible run of fill bytes"}
SECRETS = (b"SN-0042-XYZ", b"Jane Witness", b"CustodyCam", b"Kyiv safehouse")


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def photo(*, orientation: int = 6, progressive: bool = False, icc: bytes | None = None) -> bytes:
    """A JPEG as a phone writes it: Exif with GPS, maker, serial, and XMP and a comment."""
    image = Image.new("RGB", (48, 32), (200, 30, 90))
    image.putpixel((3, 4), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "CustodyCam"
    exif[0x013B] = "Jane Witness"
    exif.get_ifd(0x8769)[0xA431] = "SN-0042-XYZ"  # BodySerialNumber
    exif.get_ifd(0x8825)[0x0002] = (50.0, 27.0, 0.0)  # GPSLatitude
    out = io.BytesIO()
    image.save(
        out, "JPEG", exif=exif, progressive=progressive, comment=b"Kyiv safehouse",
        xmp=b"<x:xmpmeta><dc:creator>Jane Witness</dc:creator></x:xmpmeta>",
        **({"icc_profile": icc} if icc else {}),
    )  # fmt: skip
    return out.getvalue()


def insert_after_soi(data: bytes, *segments: bytes) -> bytes:
    return data[:2] + b"".join(segments) + data[2:]


# --- synthetic files ---------------------------------------------------------------------


@pytest.mark.parametrize("progressive", [False, True])
def test_a_phone_photo_loses_everything_but_pixels_and_rotation(progressive: bool) -> None:
    original = photo(progressive=progressive)
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"APP1 Exif", "APP1 http://ns.adobe.com/xap/1.0/", "COM"} <= set(report.removed)
    assert decode(copy, frames=[0]) == decode(original, frames=[0])
    assert Image.open(io.BytesIO(copy)).getexif() == {0x0112: 6}
    assert report.content_digest == digest_of(STRIPPER, original) == digest_of(STRIPPER, copy)
    assert report.content_kind == "jpeg-frame-tables-scans"


def test_orientation_1_is_not_re_emitted() -> None:
    copy, _ = strip_bytes(STRIPPER, photo(orientation=1))
    assert b"Exif" not in copy


def test_the_exif_block_is_big_endian_whatever_the_camera_wrote() -> None:
    copy, _ = strip_bytes(STRIPPER, photo(orientation=8))
    assert b"Exif\x00\x00MM\x00\x2a" in copy


def test_icc_profile_survives_byte_identical() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    copy, _ = strip_bytes(STRIPPER, photo(icc=profile))
    assert decode(copy).icc == profile


def test_jfif_thumbnail_is_dropped_and_adobe_trimmed() -> None:
    jfif = segment(0xE0, b"JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x01\x01" + b"\xaa\xbb\xcc")
    adobe = segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + b"Jane Witness")
    original = insert_after_soi(photo(), jfif, adobe)
    copy, report = strip_bytes(STRIPPER, original)
    assert segment(0xE0, b"JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x00\x00") in copy
    assert b"\xaa\xbb\xcc" not in copy
    assert b"Jane Witness" not in copy
    assert {"APP0 JFIF thumbnail", "APP14 Adobe extra bytes"} <= set(report.removed)
    fixed_point(STRIPPER, copy)


def test_vendor_segments_and_trailing_images_are_dropped() -> None:
    mpf = segment(0xE2, b"MPF\x00" + b"II*\x00" + b"CustodyCam")
    photoshop = segment(0xED, b"Photoshop 3.0\x00" + b"8BIM Kyiv safehouse")
    original = insert_after_soi(photo(), mpf, photoshop) + photo()  # MPF second image
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"APP2 MPF", "APP13 Photoshop 3.0", "data after EOI"} <= set(report.removed)
    assert copy.endswith(b"\xff\xd9")
    assert copy.count(b"\xff\xd9") == 1


def _sos_at(data: bytes) -> int:
    return data.index(b"\xff\xda")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[2:], "no SOI marker"),
        (lambda d: d[:-2], "runs off the end"),
        (lambda d: d[: _sos_at(d) + 6], "truncated"),
        (lambda d: d[:2] + b"\x00" + d[2:], "bytes between segments"),
        (lambda d: insert_after_soi(d, b"\xff\xd0"), "out of place"),
        (lambda d: insert_after_soi(d, segment(0xDE, b"\x00" * 6)), "out of place"),
        (lambda d: insert_after_soi(d, segment(0xDA, bytes([1, 1, 0, 0, 63, 0]))), "before frame"),
        (lambda d: d[: _sos_at(d)] + b"\xff\xd9", "before any scan"),
        (lambda d: insert_after_soi(d, segment(0xDB, b"\x00" * 10)), "malformed"),
        (lambda d: insert_after_soi(d, b"\xff\xe1\x00\x01"), "impossible length"),
        (lambda d: insert_after_soi(d, b"\xff\xe1\xff\xff" + b"\x00" * 10), "truncated"),
    ],
)  # fmt: skip
def test_damaged_structure_is_refused(damage: object, reason: str) -> None:
    assert callable(damage)
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, damage(photo()))


@pytest.mark.parametrize(
    "conditioning",
    [
        b"",  # no table
        b"\x00",  # half a table
        b"\x20\x10",  # table class 2
        b"\x04\x10",  # destination 4
        b"\x00\x0f",  # DC: lower bound L above upper bound U
        b"\x10\x00",  # AC: Kx 0
        b"\x10\x40",  # AC: Kx 64
        b"\x00\x10\x00\x21",  # one table twice
        b"Exif\x00\x00MM\x00*",  # anything else of even length
    ],
)
def test_malformed_arithmetic_conditioning_is_refused(conditioning: bytes) -> None:
    """DAC (T.81 B.2.4.3): Tc and Tb in one byte, then Cs, for each table."""
    with pytest.raises(StripError, match="segment 0xcc is malformed"):
        strip_bytes(STRIPPER, insert_after_soi(photo(), segment(0xCC, conditioning)))


def test_arithmetic_conditioning_is_kept() -> None:
    dac = segment(0xCC, b"\x00\x10\x01\x00\x10\x05\x13\x3f")  # DC 0 (L0, U1), DC 1, AC 0, AC 3
    copy, _ = strip_bytes(STRIPPER, insert_after_soi(photo(), dac))
    assert dac in copy


def test_a_second_frame_header_is_refused() -> None:
    original = photo()
    sof = original.index(b"\xff\xc0")
    length = struct.unpack(">H", original[sof + 2 : sof + 4])[0]
    doubled = (
        original[: sof + 2 + length]
        + original[sof : sof + 2 + length]
        + original[sof + 2 + length :]
    )
    with pytest.raises(StripError, match="second frame"):
        strip_bytes(STRIPPER, doubled)


class _Trickle(io.RawIOBase):
    """A source that hands out one byte per read: every chunk boundary falls everywhere."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        piece = self._data[self._pos : self._pos + 1]
        self._pos += len(piece)
        return piece


def test_entropy_coded_data_is_copied_byte_identical_across_any_boundary() -> None:
    original = photo()
    sos = _sos_at(original)
    header_end = sos + 2 + struct.unpack(">H", original[sos + 2 : sos + 4])[0]
    rng = random.Random(3)
    # Stuffed 0xFF00 pairs, restart markers after fill bytes, and more than two 64 KiB
    # chunks of it, so a pair or a run straddles the buffer's edge somewhere.
    pieces = []
    for index in range(30_000):
        pieces.append(bytes(rng.randrange(0xFF) for _ in range(rng.randrange(1, 8))))
        pieces.append(b"\xff\x00" if index % 50 else b"\xff\xff" + bytes([0xD0 + index % 8]))
    scan = b"".join(pieces)
    assert len(scan) > 2 * 65_536
    crafted = original[:header_end] + scan + b"\xff\xff\xff\xd9"  # fill bytes before EOI
    whole, _ = strip_bytes(STRIPPER, crafted)
    trickled = io.BytesIO()
    STRIPPER.strip(_Trickle(crafted), trickled)  # type: ignore[arg-type]

    assert trickled.getvalue() == whole
    assert whole.endswith(scan + b"\xff\xd9")
    assert digest_of(STRIPPER, whole) == digest_of(STRIPPER, crafted)


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    noise = Image.frombytes("RGB", (1600, 1200), random.Random(7).randbytes(1600 * 1200 * 3))
    path = tmp_path / "large.jpg"
    noise.save(path, quality=98)
    assert path.stat().st_size > 2_000_000
    assert peak_memory(STRIPPER, path) < 1_000_000


# --- the corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(STRIPPER, FILES, tmp_path_factory.mktemp("jpeg"))


def test_corpus_files_are_stripped_or_refused_for_known_reasons(batch: Batch) -> None:
    refused = batch.refused()
    assert set(refused) == set(REFUSED)
    for name, reason in refused.items():
        assert REFUSED[name] in reason
    assert len(batch.stripped) == len(FILES) - len(REFUSED)


def test_exiftool_finds_no_metadata_in_any_copy(batch: Batch) -> None:
    assert_no_leaks(batch)
    # The check can fail: the originals are full of what the copies lack.
    assert sum(bool(leaks(batch.tags[o.source])) for o in batch.stripped) > 100


def test_content_digest_is_the_same_on_original_and_copy(batch: Batch) -> None:
    assert_digests(batch, STRIPPER)


def test_copies_decode_to_the_same_pixels_and_icc_profile(batch: Batch) -> None:
    with_icc = 0
    for outcome in batch.stripped:
        assert outcome.copy is not None
        # MPF files decode as several frames: the copy keeps the first, the primary image.
        original = decode(outcome.source.read_bytes(), frames=[0])
        assert decode(outcome.copy.read_bytes()) == original, rel(outcome.source)
        with_icc += original.icc is not None
    assert with_icc >= 10


def test_rotation_survives_and_nothing_else_of_exif(batch: Batch) -> None:
    rotated = 0
    for outcome in batch.stripped:
        assert outcome.copy is not None
        before = batch.tags[outcome.source].get("IFD0:Orientation")
        after = batch.tags[outcome.copy].get("IFD0:Orientation")
        expected = before if before in range(2, 9) else None
        assert after == expected, rel(outcome.source)
        rotated += expected is not None
    assert rotated >= 15


def test_copies_end_at_eoi_and_are_fixed_points(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        assert outcome.copy.read_bytes().endswith(b"\xff\xd9")
    assert_fixed_points(batch, STRIPPER)


# --- mutated files -----------------------------------------------------------------------

SEEDS = [photo(), photo(progressive=True)] + [
    p.read_bytes() for p in FILES if p.stat().st_size < 24_000 and rel(p) not in REFUSED
]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    found = seed_needles(SEEDS, tmp_path_factory.mktemp("jpeg-seeds"), ".jpg")
    return [[*needles, *SECRETS] for needles in found]


@settings(max_examples=150, deadline=timedelta(seconds=2))
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_mutants_are_stripped_clean_or_refused(
    secrets: list[list[bytes]], index: int, edits: list[Edit]
) -> None:
    stripped = check_mutant(STRIPPER, apply_edits(SEEDS[index], edits), secrets[index])
    event("stripped" if stripped else "refused")


def test_exiftool_finds_no_metadata_in_copies_of_mutants(tmp_path: Path) -> None:
    assert exiftool_mutants(STRIPPER, SEEDS, tmp_path, ".jpg") == {}
