"""Tests for custody.metadata.tiff: hand-built IFD chains, Pillow files, corpus, mutants."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from custody.metadata.base import StripError, Stripper
from custody.metadata.tiff import TiffStripper
from tests.custody.metadata.strip_checks import (
    EDITS,
    Batch,
    Edit,
    apply_edits,
    assert_digests,
    assert_fixed_points,
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

STRIPPER: Stripper = TiffStripper()  # mypy checks the protocol
FILES = corpus_files(".tif", ".tiff")
# Corpus files refused, and why: a fuzzer crash file and a BigTIFF (see SOURCES.md).
REFUSED = {
    "pillow/Tests/images/crash-2020-10-test.tif": "unknown field type",
    "pillow/Tests/images/hopper_bigtiff.tif": "BigTIFF",
}
SECRETS = (b"SN-0042-XYZ", b"Jane Witness", b"CustodyCam", b"Kyiv safehouse")
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# ExifTool calls the strips of a JPEG-compressed IFD0 a "PreviewImage": there they are the image.
PREVIEW = frozenset({"IFD0:PreviewImage", "IFD0:PreviewImageStart", "IFD0:PreviewImageLength"})

ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 2, 3, 4, 5, 7
Tags = dict[int, tuple[int, Any]]  # tag -> (type, ints or bytes, or a function of blob offsets)


def _raw(order: str, kind: int, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    code = {SHORT: "H", LONG: "I", RATIONAL: "I"}[kind]  # rationals as flat int pairs
    return struct.pack(order + code * len(value), *value)


def build(ifds: list[Tags], blobs: list[bytes], *, order: str = "<", loop: bool = False) -> bytes:
    """A classic TIFF: the blobs (image data, sub-IFDs) first, then the IFD chain."""
    out = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + bytes(4))
    blob_at = []
    for blob in blobs:
        blob_at.append(len(out))
        out += blob + b"\x00" * (len(blob) & 1)
    links = [4]
    for tags in ifds:
        struct.pack_into(order + "I", out, links[-1], len(out))
        start, extra = len(out), bytearray()
        extra_at = start + 2 + 12 * len(tags) + 4
        out += struct.pack(order + "H", len(tags))
        for tag, (kind, value) in sorted(tags.items()):
            raw = _raw(order, kind, value(blob_at) if callable(value) else value)
            count = len(raw) // {SHORT: 2, LONG: 4, RATIONAL: 8}.get(kind, 1)
            field = raw.ljust(4, b"\x00")
            if len(raw) > 4:
                field = struct.pack(order + "I", extra_at + len(extra))
                extra += raw + b"\x00" * (len(raw) & 1)
            out += struct.pack(order + "HHI", tag, kind, count) + field
        links.append(len(out))
        out += bytes(4) + extra
    if loop:  # the last IFD links back to the first
        out[links[-1] : links[-1] + 4] = out[4:8]
    return bytes(out)


def gray(width: int, height: int, blob: int, **extra: tuple[int, Any]) -> Tags:
    """An uncompressed 8-bit grayscale IFD whose one strip is blob number `blob`."""
    tags: Tags = {
        256: (SHORT, (width,)), 257: (SHORT, (height,)), 258: (SHORT, (8,)),
        259: (SHORT, (1,)), 262: (SHORT, (1,)), 273: (LONG, lambda at: (at[blob],)),
        277: (SHORT, (1,)), 278: (SHORT, (height,)), 279: (LONG, (width * height,)),
    }  # fmt: skip
    tags.update({int(key.lstrip("t")): value for key, value in extra.items()})
    return tags


def gps_ifd(order: str = "<") -> bytes:
    """A GPS sub-IFD: GPSLatitudeRef "N" and a GPSAreaInformation naming a place."""
    place = b"ASCII\x00\x00\x00Kyiv safehouse"
    head = struct.pack(order + "H", 2) + struct.pack(order + "HHI4s", 1, ASCII, 2, b"N\x00\x00\x00")
    offset = 0  # patched by the caller: the sub-IFD's values follow it
    return (
        head + struct.pack(order + "HHII", 0x1C, UNDEFINED, len(place), offset) + bytes(4) + place
    )


def witness_tiff(*, order: str = "<", pages: int = 1, thumbnail: bool = True) -> bytes:
    """A scanner's TIFF: Make, Artist, XMP, a GPS sub-IFD, pages and a thumbnail IFD."""
    pixels = [bytes(range(i, i + 48)) for i in range(pages)] + [bytes([9] * 4)]
    gps = gps_ifd(order)
    blobs = [*pixels, gps]
    gps_index = len(blobs) - 1

    def gps_pointer(at: list[int]) -> tuple[int]:
        return (at[gps_index],)

    ifds = [
        gray(8, 6, page, t271=(ASCII, b"CustodyCam\x00"), t315=(ASCII, b"Jane Witness\x00"),
             t274=(SHORT, (6,)), t700=(1, b"<x:xmpmeta>Jane Witness</x:xmpmeta>"),
             t34853=(LONG, gps_pointer), t34675=(UNDEFINED, ICC), t254=(LONG, (2 if page else 0,)))
        for page in range(pages)
    ]  # fmt: skip
    if thumbnail:
        ifds.append(gray(2, 2, pages, t254=(LONG, (1,)), t271=(ASCII, b"CustodyCam\x00")))
    data = build(ifds, blobs, order=order)
    return _patch_gps(data, order, gps)


def _patch_gps(data: bytes, order: str, gps: bytes) -> bytes:
    at = data.index(gps)
    value_at = at + 2 + 24 + 4
    entry = at + 2 + 12 + 8  # second entry's value field
    return data[:entry] + struct.pack(order + "I", value_at) + data[entry + 4 :]


def full_resolution_frames(data: bytes) -> list[int]:
    with Image.open(io.BytesIO(data)) as image:
        kept = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            if index == 0 or not image.tag_v2.get(254, 0) & 1:  # type: ignore[attr-defined]
                kept.append(index)
        return kept


# --- hand-built and Pillow files ---------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_scan_keeps_its_pages_and_rotation_and_loses_the_rest(order: str) -> None:
    original = witness_tiff(order=order, pages=2)
    assert b"Kyiv safehouse" in original
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"Make", "Artist", "XMP", "GPSIFD", "IFD2 (reduced-resolution image)"} <= set(
        report.removed
    )
    assert decode(copy) == decode(original, frames=[0, 1])
    assert decode(copy).icc == ICC
    assert Image.open(io.BytesIO(copy)).getexif().get(0x0112) == 6
    assert copy[:2] == original[:2]
    assert report.content_digest == digest_of(STRIPPER, original) == digest_of(STRIPPER, copy)
    fixed_point(STRIPPER, copy)


@pytest.mark.parametrize(
    ("compression", "mode"),
    [("raw", "RGB"), ("tiff_lzw", "RGBA"), ("tiff_adobe_deflate", "L"), ("packbits", "RGB"),
     ("jpeg", "RGB"), ("group4", "1"), ("tiff_lzw", "I;16")],
)  # fmt: skip
def test_pillow_files_keep_their_pixels(compression: str, mode: str) -> None:
    image = Image.linear_gradient("L").resize((64, 40)).convert(mode)
    exif = Image.Exif()
    exif[0x010F] = "CustodyCam"
    exif[0x013B] = "Jane Witness"
    out = io.BytesIO()
    image.save(
        out, "TIFF", compression=compression, exif=exif, save_all=True, append_images=[image]
    )
    copy, _ = strip_bytes(STRIPPER, out.getvalue())
    assert not any(secret in copy for secret in SECRETS)
    assert decode(copy) == decode(out.getvalue())
    assert len(decode(copy).frames) == 2


def _with(tags: Tags, blobs: list[bytes] | None = None, **kw: Any) -> bytes:
    return build([tags], blobs or [bytes(48)], **kw)


def _jpeg_strip(*, exif: bool) -> bytes:
    tags = Image.Exif()
    tags[0x013B] = "Jane Witness"
    out = io.BytesIO()
    Image.new("L", (8, 6), 128).save(out, "JPEG", **({"exif": tags} if exif else {}))
    return out.getvalue()


def _jpeg_tiff(*, exif: bool) -> bytes:
    """A TIFF whose strip is a whole JPEG stream, as libtiff's JPEG compression stores it."""
    strip = _jpeg_strip(exif=exif)
    return _with(gray(8, 6, 0, t259=(SHORT, (7,)), t279=(LONG, (len(strip),))), [strip])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"II+\x00" + witness_tiff()[4:], "BigTIFF"),
        (lambda: b"IM*\x00" + witness_tiff()[4:], "byte order"),
        (lambda: witness_tiff()[:-20], "truncated"),
        (lambda: witness_tiff()[:4] + bytes(4) + witness_tiff()[8:], "no image file directory"),
        (lambda: build([gray(8, 6, 0)] * 2, [bytes(48)], loop=True), "loops"),
        (lambda: _with(gray(8, 6, 0, t259=(SHORT, (6,)))), "compression 6"),
        (lambda: _with(gray(8, 6, 0, t259=(SHORT, (34712,)))), "compression 34712"),
        (lambda: _with(gray(8, 6, 0, t317=(ASCII, b"Jane Witness\x00"))), "type or count"),
        (lambda: _with(gray(8, 6, 0, t274=(SHORT, (1, 1)))), "type or count"),
        (lambda: _with(gray(8, 6, 0, t34675=(UNDEFINED, b"Jane Witness" * 12))), "ICC"),
        (lambda: _with(gray(8, 6, 0, t279=(LONG, (480,)))), "past the end"),
        (lambda: _with({k: v for k, v in gray(8, 6, 0).items() if k != 279}), "byte counts"),
        (lambda: _with(gray(8, 6, 0, t324=(LONG, (8,)), t325=(LONG, (48,)))), "strips or tiles"),
        (lambda: _with(gray(8, 6, 0, t273=(LONG, (20,)))), "overlaps the file's tags"),
        (lambda: _jpeg_tiff(exif=True), "carries metadata"),
    ],
)  # fmt: skip
def test_unusual_or_damaged_files_are_refused(make: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, make())


def test_a_jpeg_strip_without_metadata_is_kept() -> None:
    copy, _ = strip_bytes(STRIPPER, _jpeg_tiff(exif=False))
    assert _jpeg_strip(exif=False) in copy


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.tif"
    page = Image.frombytes("RGB", (1400, 1000), os.urandom(1400 * 1000 * 3))
    page.save(path, save_all=True, append_images=[page], tiffinfo={315: "Jane Witness"})
    assert path.stat().st_size > 8_000_000
    assert peak_memory(STRIPPER, path) < 1_000_000


# --- the corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(STRIPPER, FILES, tmp_path_factory.mktemp("tiff"))


def _preview(record: dict[str, Any]) -> Callable[[str], bool]:
    jpeg = record.get("IFD0:Compression") == 7
    return lambda key: jpeg and key in PREVIEW


def test_corpus_files_are_stripped_or_refused_for_known_reasons(batch: Batch) -> None:
    refused = batch.refused()
    assert set(refused) == set(REFUSED)
    for name, reason in refused.items():
        assert REFUSED[name] in reason
    assert len(batch.stripped) == len(FILES) - len(REFUSED)


def test_exiftool_finds_no_metadata_in_any_copy(batch: Batch) -> None:
    found = {}
    for outcome in batch.stripped:
        assert outcome.copy is not None
        record = batch.tags[outcome.copy]
        found[rel(outcome.source)] = leaks(record, allow=_preview(record), pages=True)
    assert {name: keys for name, keys in found.items() if keys} == {}
    assert sum(bool(leaks(batch.tags[o.source])) for o in batch.stripped) >= 8


def test_content_digest_is_the_same_on_original_and_copy(batch: Batch) -> None:
    assert_digests(batch, STRIPPER)


def test_copies_decode_to_the_same_pixels_and_icc_profile(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        original = outcome.source.read_bytes()
        expected = decode(original, frames=full_resolution_frames(original))
        assert decode(outcome.copy.read_bytes()) == expected, rel(outcome.source)


def test_orientation_is_kept_as_it_was(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        before = batch.tags[outcome.source].get("IFD0:Orientation")
        assert batch.tags[outcome.copy].get("IFD0:Orientation") == before, rel(outcome.source)


def test_copies_hold_nothing_but_ifds_and_image_data(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        copy = outcome.copy.read_bytes()
        # Header, IFDs with their values, then exactly the strips: no unreferenced bytes.
        assert struct.unpack("<I" if copy[:2] == b"II" else ">I", copy[4:8])[0] == 8
        spans = sorted(image_data(copy))
        assert spans[-1][1] == len(copy)
        assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert_fixed_points(batch, STRIPPER)


def image_data(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every strip or tile of every IFD, as Pillow reads them."""
    spans = []
    with Image.open(io.BytesIO(data)) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            tags = image.tag_v2  # type: ignore[attr-defined]
            offsets, counts = (273, 279) if 273 in tags else (324, 325)
            spans += [(a, a + n) for a, n in zip(tags[offsets], tags[counts], strict=True)]
    return spans


# --- mutated files -----------------------------------------------------------------------

SEEDS = [witness_tiff(), witness_tiff(order=">", pages=2)] + [
    p.read_bytes() for p in FILES if p.stat().st_size < 60_000 and rel(p) not in REFUSED
]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    found = seed_needles(SEEDS, tmp_path_factory.mktemp("tiff-seeds"), ".tif")
    return [[*needles, *SECRETS] for needles in found]


@settings(max_examples=150, deadline=timedelta(seconds=2))
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_mutants_are_stripped_clean_or_refused(
    secrets: list[list[bytes]], index: int, edits: list[Edit]
) -> None:
    stripped = check_mutant(STRIPPER, apply_edits(SEEDS[index], edits), secrets[index])
    event("stripped" if stripped else "refused")


def test_exiftool_finds_no_metadata_in_copies_of_mutants(tmp_path: Path) -> None:
    found = exiftool_mutants(
        STRIPPER, SEEDS, tmp_path, ".tif", allow=lambda key: key in PREVIEW, pages=True
    )
    assert found == {}
