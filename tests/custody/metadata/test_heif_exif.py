"""The Exif item of HEIF files, found through iinf and iloc (base offsets included)."""

from __future__ import annotations

import io
import struct

import pytest

from custody.metadata.extract import extract_metadata
from custody.metadata.extractors.heif import HeifError, exif_block
from tests.custody.metadata.strip_checks import CORPUS
from tests.custody.metadata.test_heif import SERIAL, WITNESS, photo

APPLE = CORPUS / "exif-samples" / "heic" / "IMG_5195.HEIC"


def test_a_libheif_photo_warns_of_its_gps_serial_and_author() -> None:
    """libheif puts the Exif item's position in the iloc base_offset; exifread, which drops
    it, stopped on an assertion and the position went unwarned."""
    metadata = extract_metadata(io.BytesIO(photo()), "image/heic")
    assert metadata.errors == ()
    assert metadata.sensitive.gps
    assert metadata.sensitive.device_serial
    assert metadata.sensitive.names
    assert metadata.sensitive.thumbnail
    assert SERIAL in metadata.sensitive_values
    assert WITNESS.decode() in metadata.sensitive_values
    assert any(name.startswith("EXIF:GPS GPSLatitude") for name in metadata.fields)


def test_the_block_starts_at_the_tiff_header() -> None:
    block = exif_block(io.BytesIO(photo()), 1000)
    assert block is not None
    assert block[:4] in (b"II*\x00", b"MM\x00*")


@pytest.mark.skipif(not APPLE.exists(), reason="../shared/corpus is absent")
def test_an_apple_photo_with_the_exif_prefix_reads_as_before() -> None:
    with APPLE.open("rb") as fh:
        block = exif_block(fh, 1000)
    assert block is not None
    assert block[:4] in (b"II*\x00", b"MM\x00*")
    assert extract_metadata(APPLE, "image/heic").sensitive.gps


def test_an_offset_past_the_item_is_an_error_recorded_not_raised() -> None:
    data = bytearray(photo())
    tiff = data.index(b"MM\x00*") if b"MM\x00*" in data else data.index(b"II*\x00")
    # The item begins with its 4-byte exif_tiff_header_offset (6: "Exif\0\0" follows).
    assert data[tiff - 10 : tiff] == b"\x00\x00\x00\x06Exif\x00\x00"
    data[tiff - 10 : tiff - 6] = struct.pack(">I", 1 << 20)
    with pytest.raises(HeifError, match="TIFF header"):
        exif_block(io.BytesIO(bytes(data)), 1000)
    metadata = extract_metadata(io.BytesIO(bytes(data)), "image/heic")
    assert any(error.startswith("heif_exif: HeifError") for error in metadata.errors)
    assert metadata.sensitive.thumbnail  # the other extractors still ran


@pytest.mark.parametrize("cut", [40, 200, 400])
def test_a_file_cut_short_is_an_error_or_nothing_never_a_crash(cut: int) -> None:
    metadata = extract_metadata(io.BytesIO(photo()[:cut]), "image/heic")
    assert all(not error.startswith("heif_exif: IndexError") for error in metadata.errors)
