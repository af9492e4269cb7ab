"""HEIF/HEIC sharing copies: a PNG rendition of the primary image, nothing of the container."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageCms

from custody.metadata import heif
from custody.metadata.base import StripError, Stripper
from custody.metadata.copies import make_copy, stripper_for
from custody.metadata.extract import extract_metadata
from custody.metadata.heif import HeifStripper
from tests.custody.metadata.strip_checks import (
    apply_edits,
    assert_digests,
    assert_no_leaks,
    corpus_files,
    digest_of,
    random_edits,
    rel,
    run_batch,
    strip_bytes,
)

STRIPPER: Stripper = HeifStripper()  # mypy checks the protocol
FILES = corpus_files(".heic", ".heif", ".avif")
SERIAL = "SN-0042-XYZ"
WITNESS = b"Jane Witness"
SECRETS = (SERIAL.encode(), WITNESS, b"CustodyCam")
# 48 deg 51' 29" N, 2 deg 17' 40" E: a position, to be found nowhere in the copy
GPS = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}


def photo(*, orientation: int = 1, thumbnail: bool = True, alpha: bool = False) -> bytes:
    """A 64x32 HEIC as phones write them: Exif (serial, GPS, orientation), XMP, a thumbnail.
    A green band runs along rows 4 to 7 of the stored (unrotated) image, columns 0 to 31."""
    image = Image.new("RGBA" if alpha else "RGB", (64, 32), (200, 10, 10))
    for x in range(32):
        for y in range(4, 8):  # four rows: lossy coding smears a line of one
            image.putpixel((x, y), (0, 255, 0, 255) if alpha else (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x0110] = "CustodyCam"
    exif[0xA431] = SERIAL
    exif[0x8825] = GPS
    heif_file = pillow_heif.from_pillow(image)
    if thumbnail:
        heif_file[0].info["thumbnails"] = [16]  # a 16-pixel thumbnail item
    out = io.BytesIO()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq><rdf:li>'
        + WITNESS
        + b"</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    heif_file.save(out, quality=95, exif=exif.tobytes(), xmp=xmp)
    return out.getvalue()


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        crc = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc
        chunks.append(kind)
        offset += 12 + length
    return chunks


def test_a_phone_photo_becomes_a_png_of_its_pixels_and_nothing_else() -> None:
    original = photo()
    copy, report = strip_bytes(STRIPPER, original)
    assert png_chunks(copy) == [b"IHDR", b"IDAT", b"IEND"]
    assert set(report.removed) >= {"HEIF container", "HEIF Exif", "HEIF XMP", "HEIF thumbnails"}
    assert [secret for secret in SECRETS if secret in copy] == []
    decoded = pillow_heif.open_heif(io.BytesIO(original)).to_pillow()
    rendition = Image.open(io.BytesIO(copy))
    assert rendition.size == decoded.size
    assert rendition.tobytes() == decoded.tobytes()
    assert report.content_kind == "decoded-pixels"
    assert digest_of(STRIPPER, original) == report.content_digest == digest_of(STRIPPER, copy)


def test_a_rotated_photo_shows_in_the_copy_as_in_the_original() -> None:
    """Orientation 6 (turn 90 degrees clockwise to show): the HEIF's irot, applied to the
    pixels, since the PNG carries no orientation of its own."""
    copy, _ = strip_bytes(STRIPPER, photo(orientation=6))
    shown = Image.open(io.BytesIO(copy)).convert("RGB")
    assert shown.size == (32, 64)  # portrait, as a viewer shows the original
    red, green, _ = shown.getpixel((26, 10))  # stored rows 4-7 become columns 24-27
    assert green > 150
    assert red < 100
    red, green, _ = shown.getpixel((5, 10))
    assert red > 150
    assert green < 60


def avif(*, orientation: int = 6) -> bytes:
    """The same picture as AVIF (AV1 in HEIF), which Pillow writes through libavif: the Exif
    orientation becomes the file's irot."""
    image = Image.new("RGB", (64, 32), (200, 10, 10))
    for x in range(32):
        for y in range(4, 8):
            image.putpixel((x, y), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0xA431] = SERIAL
    exif[0x8825] = GPS
    out = io.BytesIO()
    xmp = b"<x:xmpmeta><dc:creator>" + WITNESS + b"</dc:creator></x:xmpmeta>"
    image.save(out, "AVIF", exif=exif.tobytes(), xmp=xmp, quality=90)
    return out.getvalue()


def test_an_avif_photo_becomes_a_png_shown_as_the_original() -> None:
    original = avif(orientation=6)
    copy, report = strip_bytes(STRIPPER, original)
    assert png_chunks(copy) == [b"IHDR", b"IDAT", b"IEND"]
    assert set(report.removed) == {"HEIF container", "HEIF Exif", "HEIF XMP"}
    assert [secret for secret in SECRETS if secret in copy] == []
    shown = Image.open(io.BytesIO(copy)).convert("RGB")
    assert shown.size == (32, 64)
    red, green, _ = shown.getpixel((26, 10))
    assert green > 150
    assert red < 100
    assert digest_of(STRIPPER, original) == report.content_digest == digest_of(STRIPPER, copy)


def test_an_avif_sequence_is_refused() -> None:
    first, second = Image.new("RGB", (64, 32), "red"), Image.new("RGB", (64, 32), "blue")
    out = io.BytesIO()
    # Without Exif: Pillow's encoder (13.0) crashes writing a sequence with an Exif block.
    first.save(out, "AVIF", save_all=True, append_images=[second], quality=90)
    with pytest.raises(StripError, match="sequence"):
        strip_bytes(STRIPPER, out.getvalue())


def test_an_icc_profile_and_an_alpha_channel_survive() -> None:
    image = Image.new("RGBA", (16, 16), (10, 20, 30, 128))
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    heif_file = pillow_heif.from_pillow(image)
    heif_file.info["icc_profile"] = profile
    out = io.BytesIO()
    heif_file.save(out, quality=-1)
    copy, report = strip_bytes(STRIPPER, out.getvalue())
    rendition = Image.open(io.BytesIO(copy))
    assert rendition.mode == "RGBA"
    assert rendition.info.get("icc_profile") == profile
    assert digest_of(STRIPPER, out.getvalue()) == report.content_digest


def test_make_copy_names_the_rendition_png_and_checks_it_as_png(tmp_path: Path) -> None:
    original = tmp_path / "photo.heic"
    original.write_bytes(photo())
    metadata = extract_metadata(original, "image/heic")
    assert metadata.sensitive.names
    assert metadata.sensitive.thumbnail
    made = make_copy(
        original,
        "image/heic",
        tmp_path / "copy",
        original_metadata=metadata,
        extract=extract_metadata,
    )
    assert made.media_type == "image/png"
    assert made.stripper == "heif-png/1"
    assert stripper_for("image/heif") is stripper_for("image/heic") is stripper_for("image/avif")
    assert not extract_metadata(tmp_path / "copy", "image/png").sensitive.any


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:4] + b"xxxx" + data[8:],  # no ftyp box
        lambda data: b"",
    ],
)
def test_a_damaged_file_is_refused(damage: object) -> None:
    with pytest.raises(StripError):
        strip_bytes(STRIPPER, damage(photo()))  # type: ignore[operator]


def test_an_image_of_too_many_pixels_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heif, "MAX_PIXELS", 64 * 32 - 1)
    with pytest.raises(StripError, match="larger than allowed"):
        strip_bytes(STRIPPER, photo())


def test_mutants_are_refused_or_copied_clean() -> None:
    """Random edits of a phone photo: a StripError, or a copy whose digest holds on both sides
    and that carries none of the secrets; never another exception."""
    rng = random.Random(20261205)
    seed = photo()
    copied = 0
    for _ in range(60):
        data = apply_edits(seed, random_edits(rng))
        try:
            copy, report = strip_bytes(STRIPPER, data)
        except StripError:
            continue
        copied += 1
        assert digest_of(STRIPPER, data) == report.content_digest == digest_of(STRIPPER, copy)
        assert [secret for secret in SECRETS if secret in copy] == []
    assert copied, "no mutant was copied: the edits never left a decodable file"


def test_corpus_photos_are_rendered_clean_with_their_pixels(tmp_path: Path) -> None:
    batch = run_batch(STRIPPER, FILES, tmp_path)
    assert_no_leaks(batch)
    assert_digests(batch, STRIPPER)
    for outcome in batch.stripped:
        assert outcome.copy is not None
        assert png_chunks(outcome.copy.read_bytes())[0] == b"IHDR", rel(outcome.source)
    assert len(batch.stripped) >= 7, batch.refused()


SMALL = [path for path in FILES if path.stat().st_size < 100_000]  # small pictures: quick


@pytest.mark.skipif(not SMALL, reason="../shared/corpus is absent")
def test_mutated_corpus_photos_are_refused_or_copied_clean() -> None:
    """Random edits of the corpus's smaller HEIF and AVIF files: a StripError, or a copy
    whose digest holds on both sides; never another exception."""
    rng = random.Random(20261206)
    outcomes = {"copied": 0, "refused": 0}
    for path in SMALL:
        seed = path.read_bytes()
        for _ in range(25):
            data = apply_edits(seed, random_edits(rng))
            try:
                copy, report = strip_bytes(STRIPPER, data)
            except StripError:
                outcomes["refused"] += 1
                continue
            outcomes["copied"] += 1
            assert digest_of(STRIPPER, data) == report.content_digest == digest_of(STRIPPER, copy)
            assert png_chunks(copy)[0] == b"IHDR"
    assert outcomes["copied"], outcomes
    assert outcomes["refused"], outcomes
