"""Tests for custody.metadata.png: synthetic chunk layouts, the corpus, and mutated files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

from custody.metadata.base import StripError, Stripper
from custody.metadata.png import SIGNATURE, PngStripper
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

STRIPPER: Stripper = PngStripper()  # mypy checks the protocol
FILES = corpus_files(".png")
# Corpus files refused, and why: each is damaged (see SOURCES.md).
REFUSED = {"pillow/Tests/images/truncated_end_chunk.png": "truncated PNG IDAT chunk"}
SECRETS = (b"SN-0042-XYZ", b"Jane Witness", b"CustodyCam", b"Kyiv safehouse", b"2026:11:28")
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def screenshot(*, orientation: int = 6, frames: int = 1) -> bytes:
    """A PNG as an editor writes it: text chunks, Exif with a serial, an ICC profile."""
    images = [Image.new("RGBA", (40, 30), (10 * i, 120, 200, 180)) for i in range(frames)]
    images[0].putpixel((1, 2), (255, 0, 0, 255))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Witness")
    info.add_itxt("Comment", "Kyiv safehouse", lang="en")
    info.add_text("Software", "CustodyCam", zip=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x0132] = "2026:11:28 10:00:00"
    exif.get_ifd(0x8769)[0xA431] = "SN-0042-XYZ"
    out = io.BytesIO()
    images[0].save(
        out, "PNG", pnginfo=info, exif=exif, icc_profile=ICC,
        **({"save_all": True, "append_images": images[1:]} if frames > 1 else {}),
    )  # fmt: skip
    return out.getvalue()


def chunks(data: bytes) -> list[bytes]:
    kinds, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kinds.append(data[at + 4 : at + 8])
        at += 12 + length
    return kinds


def repair_crcs(data: bytes) -> bytes:
    """Recompute every CRC a mutation broke, so mutants reach the checks behind the CRC."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        (length,) = struct.unpack(">I", out[at : at + 4])
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[at + 4 : end]))
        at = end + 4
    return bytes(out)


def with_idat(data: bytes, change: object) -> bytes:
    """The file with its IDAT data joined into one chunk and passed through `change`."""
    assert callable(change)
    idat, others, at = b"", [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        idat += body if kind == b"IDAT" else b""
        others.append(b"" if kind == b"IDAT" else chunk(kind, body))
        at += 12 + length
    return SIGNATURE + b"".join(others[:-1]) + chunk(b"IDAT", change(idat)) + others[-1]


def before_iend(data: bytes, *extra: bytes) -> bytes:
    return data[:-12] + b"".join(extra) + data[-12:]


# --- synthetic files ---------------------------------------------------------------------


def test_an_edited_png_loses_its_text_and_exif_but_not_its_pixels() -> None:
    original = screenshot()
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"tEXt", "iTXt", "zTXt", "eXIf", "iCCP profile name"} <= set(report.removed)
    assert decode(copy) == decode(original)
    assert decode(copy).icc == ICC
    assert Image.open(io.BytesIO(copy)).getexif() == {0x0112: 6}
    assert report.content_digest == digest_of(STRIPPER, original) == digest_of(STRIPPER, copy)
    assert report.content_kind == "png-idat-fdat"
    fixed_point(STRIPPER, copy)


def test_orientation_1_is_not_re_emitted() -> None:
    copy, _ = strip_bytes(STRIPPER, screenshot(orientation=1))
    assert b"eXIf" not in copy


def test_apng_frames_survive() -> None:
    original = screenshot(frames=3)
    copy, _ = strip_bytes(STRIPPER, original)
    assert {b"acTL", b"fcTL", b"fdAT"} <= set(chunks(copy))
    assert decode(copy) == decode(original)
    assert len(decode(copy).frames) == 3


ADAM7 = ["16462646", "77777777", "56565656", "77777777", "36463646", "77777777", "56565656",
         "77777777"]  # fmt: skip  # PNG §8.2 Figure 8.1: the pass of each pixel


def interlaced(width: int, height: int) -> tuple[bytes, bytes]:
    """A grey Adam7 PNG built pixel by pixel, and the same image with one byte too many."""
    raw = b""
    for number in "1234567":
        pixels = [(x, y) for y in range(height) for x in range(width)]
        in_pass = [(x, y) for x, y in pixels if ADAM7[y % 8][x % 8] == number]
        for row in sorted({y for _, y in in_pass}):
            raw += b"\x00" + bytes(x % 251 for x, y in in_pass if y == row)
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 1))
    tail = chunk(b"IEND", b"")
    exact = SIGNATURE + ihdr + chunk(b"IDAT", zlib.compress(raw)) + tail
    return exact, SIGNATURE + ihdr + chunk(b"IDAT", zlib.compress(raw + b"\x00")) + tail


@pytest.mark.parametrize(("width", "height"), [(1, 1), (3, 9), (13, 7), (33, 17)])
def test_interlaced_image_data_must_have_its_exact_size(width: int, height: int) -> None:
    exact, longer = interlaced(width, height)
    copy, _ = strip_bytes(STRIPPER, exact)
    assert decode(copy) == decode(exact)
    with pytest.raises(StripError, match="beyond the size"):
        strip_bytes(STRIPPER, longer)


def test_unknown_ancillary_chunks_and_data_after_iend_are_dropped() -> None:
    original = before_iend(screenshot(), chunk(b"prVt", b"Jane Witness")) + b"Kyiv safehouse"
    copy, report = strip_bytes(STRIPPER, original)
    assert not any(secret in copy for secret in SECRETS)
    assert {"prVt", "data after IEND"} <= set(report.removed)
    assert copy.endswith(chunk(b"IEND", b""))


def test_png_without_metadata_is_copied_byte_identical() -> None:
    out = io.BytesIO()
    Image.new("L", (5, 5), 7).save(out, "PNG")
    copy, report = strip_bytes(STRIPPER, out.getvalue())
    assert copy == out.getvalue()
    assert report.removed == ()


def _flip_crc(data: bytes) -> bytes:
    at = data.index(b"IDAT") + 4 + struct.unpack(">I", data[data.index(b"IDAT") - 4 :][:4])[0]
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: b"\x89PNG\n\r\x1a\n" + d[8:], "bad signature"),
        (_flip_crc, "CRC"),
        (lambda d: d[:-12], "truncated"),
        (lambda d: d[:-40], "truncated"),
        (lambda d: before_iend(d, chunk(b"HIDE", b"Jane Witness")), "unknown critical"),
        (lambda d: before_iend(d, chunk(b"tE1t", b"x")), "invalid type"),
        (lambda d: d[:8] + chunk(b"gAMA", b"\x00\x00\xb1\x8f") + d[8:], "IHDR"),
        (lambda d: before_iend(d, d[8:33]), "IHDR"),
        (lambda d: d[:8] + d[8:33] + chunk(b"IEND", b""), "before any IDAT"),
        (lambda d: d[:-12] + chunk(b"IEND", b"x"), "not empty"),
        (lambda d: with_idat(d, lambda i: i + b"Jane Witness"), "after its zlib stream"),
        (lambda d: with_idat(d, lambda i: i[:-20]), "ends before the size"),
        (lambda d: with_idat(d, lambda i: zlib.compress(zlib.decompress(i) + b"\0")), "beyond"),
        (lambda d: with_idat(d, lambda i: i[:2] + b"Jane Witness" + i[2:]), "not a valid zlib"),
    ],
)
def test_damaged_structure_is_refused(damage: object, reason: str) -> None:
    assert callable(damage)
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, damage(screenshot()))


def after_ihdr(data: bytes, *extra: bytes) -> bytes:
    return data[:33] + b"".join(extra) + data[33:]


def before_idat(data: bytes, *extra: bytes) -> bytes:
    at = data.index(b"IDAT") - 4
    return data[:at] + b"".join(extra) + data[at:]


def palette_png(colours: int) -> bytes:
    image = Image.new("P", (8, 8))
    image.putpalette(bytes(range(3 * colours)))
    out = io.BytesIO()
    image.save(out, "PNG", bits=8)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (after_ihdr(screenshot(), chunk(b"gAMA", b"\x00\x00\xb1\x8fJane")), "gAMA"),
        (after_ihdr(screenshot(), chunk(b"cHRM", bytes(32) + b"J")), "cHRM"),
        (after_ihdr(screenshot(), chunk(b"sRGB", b"\x00Jane")), "sRGB"),
        (after_ihdr(screenshot(), chunk(b"sRGB", b"")), "sRGB"),
        (after_ihdr(screenshot(), chunk(b"pHYs", bytes(9) + b"Jane")), "pHYs"),
        (after_ihdr(screenshot(), chunk(b"cICP", bytes(4) + b"J")), "cICP"),
        (after_ihdr(screenshot(), chunk(b"acTL", bytes(8) + b"J")), "acTL"),
        (after_ihdr(screenshot(), chunk(b"sBIT", b"\x08\x08\x08")), "sBIT"),  # RGBA: 4
        (after_ihdr(screenshot(), chunk(b"sBIT", b"\x08" * 5)), "sBIT"),
        (after_ihdr(screenshot(), chunk(b"bKGD", bytes(2))), "bKGD"),  # RGBA: 6
        (after_ihdr(screenshot(), chunk(b"bKGD", bytes(6) + b"Jane")), "bKGD"),
        (after_ihdr(screenshot(), chunk(b"tRNS", bytes(6))), "tRNS"),  # RGBA: none
        (after_ihdr(screenshot(), chunk(b"PLTE", bytes(4))), "PLTE"),
        (after_ihdr(screenshot(), chunk(b"PLTE", bytes(3 * 257))), "PLTE"),
        (before_idat(palette_png(4), chunk(b"tRNS", bytes(5))), "tRNS"),  # 4 colours
    ],
)  # fmt: skip
def test_chunks_of_a_fixed_size_with_other_sizes_are_refused(data: bytes, name: str) -> None:
    with pytest.raises(StripError, match=f"PNG {name} chunk has"):
        strip_bytes(STRIPPER, data)


def test_chunks_of_their_exact_size_are_kept() -> None:
    extra = (
        chunk(b"gAMA", b"\x00\x00\xb1\x8f"),
        chunk(b"sBIT", b"\x08" * 4),
        chunk(b"bKGD", bytes(6)),
    )
    copy, _ = strip_bytes(STRIPPER, after_ihdr(screenshot(), *extra))
    assert b"".join(extra) in copy
    transparency = chunk(b"tRNS", b"\x00\xff")
    copy, _ = strip_bytes(STRIPPER, before_idat(palette_png(4), transparency))
    assert transparency in copy


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3)).save(path, compress_level=1)
    assert path.stat().st_size > 3_000_000
    assert peak_memory(STRIPPER, path) < 1_000_000


# --- the corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(STRIPPER, FILES, tmp_path_factory.mktemp("png"))


def test_corpus_files_are_stripped_or_refused_for_known_reasons(batch: Batch) -> None:
    refused = batch.refused()
    assert set(refused) == set(REFUSED)
    for name, reason in refused.items():
        assert REFUSED[name] in reason
    assert len(batch.stripped) == len(FILES) - len(REFUSED)


def test_exiftool_finds_no_metadata_in_any_copy(batch: Batch) -> None:
    assert_no_leaks(batch)
    assert sum(bool(leaks(batch.tags[o.source])) for o in batch.stripped) >= 5


def test_content_digest_is_the_same_on_original_and_copy(batch: Batch) -> None:
    assert_digests(batch, STRIPPER)


def test_copies_decode_to_the_same_pixels_and_icc_profile(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # png_decompression_dos.png has a zTXt bomb Pillow refuses by default: let the original
    # through so its pixels can be compared (the copy has no zTXt).
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 1 << 26)
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 1 << 27)
    for outcome in batch.stripped:
        assert outcome.copy is not None
        original = decode(outcome.source.read_bytes())
        assert decode(outcome.copy.read_bytes()) == original, rel(outcome.source)


def test_rotation_survives_and_nothing_else_of_exif(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        before = batch.tags[outcome.source].get("IFD0:Orientation")
        after = batch.tags[outcome.copy].get("IFD0:Orientation")
        assert after == (before if before in range(2, 9) else None), rel(outcome.source)


def test_copies_end_at_iend_and_are_fixed_points(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        copy = outcome.copy.read_bytes()
        assert copy.startswith(SIGNATURE)
        assert copy.endswith(chunk(b"IEND", b""))
        assert copy.count(b"IEND") == 1
    assert_fixed_points(batch, STRIPPER)


# --- mutated files -----------------------------------------------------------------------

SEEDS = [screenshot(), screenshot(frames=2)] + [
    p.read_bytes() for p in FILES if p.stat().st_size < 100_000 and rel(p) not in REFUSED
]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    found = seed_needles(SEEDS, tmp_path_factory.mktemp("png-seeds"), ".png")
    return [[*needles, *SECRETS] for needles in found]


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS, repair=st.booleans())
def test_mutants_are_stripped_clean_or_refused(
    secrets: list[list[bytes]], index: int, edits: list[Edit], repair: bool
) -> None:
    data = apply_edits(SEEDS[index], edits)
    stripped = check_mutant(STRIPPER, repair_crcs(data) if repair else data, secrets[index])
    event(f"{'stripped' if stripped else 'refused'}{' (CRCs repaired)' if repair else ''}")


def test_exiftool_finds_no_metadata_in_copies_of_mutants(tmp_path: Path) -> None:
    assert exiftool_mutants(STRIPPER, SEEDS, tmp_path, ".png", count=150, repair=repair_crcs) == {}
