"""Sharing copies: the stripper registry and the fail-closed checks around every copy."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from custody.metadata import copies
from custody.metadata.base import (
    Metadata,
    Sensitive,
    StripError,
    StripReport,
    UnsupportedFormatError,
)
from custody.metadata.copies import make_copy, stripper_for, supported_media_types, value_needles
from custody.metadata.extract import extract_metadata
from tests.custody.metadata.pdf_checks import AUTHOR, annotation_authors, witness_pdf

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
GPS_PHOTO = CORPUS / "exif-samples" / "jpg" / "gps" / "DSCN0029.jpg"


def clean(_: Path, media_type: str) -> Metadata:
    return Metadata(media_type=media_type)


class Echo:
    """A stripper that copies its input and reports given content digests: `read_digest` for
    the original as `strip` reads it, `reread_digest` for any file `content_digest` reads."""

    name = "echo"
    version = "echo/1"
    media_types = frozenset({"application/x-echo"})

    def __init__(self, read_digest: str = "a" * 64, reread_digest: str = "a" * 64) -> None:
        self.read_digest = read_digest
        self.reread_digest = reread_digest
        self.reread: list[bytes] = []

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        sink.write(source.read())
        return StripReport(
            removed=("nothing",), content_digest=self.read_digest, content_kind="echo"
        )

    def content_digest(self, source: BinaryIO) -> str:
        self.reread.append(source.read())
        return self.reread_digest


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Echo:
    stripper = Echo()
    monkeypatch.setitem(copies.STRIPPERS, "application/x-echo", stripper)
    return stripper


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "original"
    path.write_bytes(data)
    return path


def echo_copy(
    tmp_path: Path,
    data: bytes = b"x",
    *,
    extract: Callable[[Path, str], Metadata] = clean,
    original: Metadata | None = None,
) -> copies.Copy:
    """The checked copy of `data` by the echo stripper, to tmp_path / "copy"."""
    return make_copy(
        write(tmp_path, data),
        "application/x-echo",
        tmp_path / "copy",
        original_metadata=original or Metadata("application/x-echo"),
        extract=extract,
    )


def test_registry_matches_media_types_with_parameters() -> None:
    assert stripper_for("image/jpeg").name == "jpeg"
    assert stripper_for("audio/ogg; codecs=opus").name == "ogg"
    with pytest.raises(UnsupportedFormatError) as refused:
        stripper_for("text/plain")
    assert "image/jpeg" in refused.value.supported
    assert "image/jpeg" in supported_media_types()


def test_clean_copy_is_released(tmp_path: Path, echo: Echo) -> None:
    made = echo_copy(tmp_path, b"evidence bytes")
    assert (tmp_path / "copy").read_bytes() == b"evidence bytes"
    assert echo.reread == [b"evidence bytes"]  # the copy, read back once
    assert made.size == 14
    assert made.stripper == "echo/1"


def test_changed_content_is_refused(tmp_path: Path, echo: Echo) -> None:
    echo.reread_digest = "b" * 64
    with pytest.raises(StripError, match="content"):
        echo_copy(tmp_path)


def test_the_content_digest_is_read_back_from_the_copy_written(
    tmp_path: Path, echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer that loses the last byte: the digest the stripper took of the original as it
    # read it cannot vouch for what reached the disk.
    def lossy(source: BinaryIO, sink: BinaryIO) -> StripReport:
        data = source.read()
        sink.write(data[:-1])
        return StripReport(("nothing",), hashlib.sha256(data).hexdigest(), "echo")

    monkeypatch.setattr(echo, "strip", lossy)
    monkeypatch.setattr(echo, "content_digest", lambda s: hashlib.sha256(s.read()).hexdigest())
    with pytest.raises(StripError, match="content"):
        echo_copy(tmp_path, b"evidence bytes")


def test_a_stripper_that_digests_both_sides_is_not_asked_again(
    tmp_path: Path, echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(echo, "digests_both_sides", True, raising=False)
    monkeypatch.setattr(echo, "reread_digest", "never asked")
    made = echo_copy(tmp_path, b"bytes")
    assert made.original_content_digest == made.report.content_digest == "a" * 64


def test_sensitive_metadata_found_in_the_copy_is_refused(tmp_path: Path, echo: Echo) -> None:
    def gps(_: Path, media_type: str) -> Metadata:
        return Metadata(media_type, sensitive=Sensitive(gps=True, fields=("EXIF:GPS GPSLatitude",)))

    with pytest.raises(StripError) as refused:
        echo_copy(tmp_path, extract=gps)
    assert refused.value.found == ("EXIF:GPS GPSLatitude",)


def test_unreadable_copy_is_refused(tmp_path: Path, echo: Echo) -> None:
    def broken(_: Path, media_type: str) -> Metadata:
        return Metadata(media_type, errors=("exif: ValueError: bad IFD",))

    with pytest.raises(StripError, match="certainty"):
        echo_copy(tmp_path, extract=broken)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be"])
def test_an_original_value_left_in_the_bytes_is_refused(
    tmp_path: Path, echo: Echo, encoding: str
) -> None:
    # Straddle the scan window so a value split across two reads is still found.
    data = b"\x00" * (copies.SCAN_WINDOW - 3) + "Amira Haddad".encode(encoding) + b"\x00" * 10
    original = Metadata("application/x-echo", sensitive_values=("Amira Haddad",))
    with pytest.raises(StripError, match="bytes"):
        echo_copy(tmp_path, data, original=original)


def test_short_values_are_not_scanned() -> None:
    needles = value_needles(["ab", " x ", "Nikon"])
    assert set(needles) == {"Nikon".encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be")}
    assert set(needles.values()) >= {"value #2 (utf-8)", "value #2 (utf-16-le)"}


@pytest.mark.parametrize("name", ["Олена Коваль", "คณิต มงคลพิทักษ์สุข", "欧阳娜娜"])
def test_values_outside_latin_1_are_scanned_only_in_the_encodings_that_hold_them(
    tmp_path: Path, echo: Echo, name: str
) -> None:
    needles = value_needles([name])
    assert set(needles) == {name.encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be")}
    original = Metadata("application/x-echo", sensitive_values=(name,))
    assert echo_copy(tmp_path, b"a copy without the name", original=original).size == 23
    with pytest.raises(StripError, match="bytes"):
        echo_copy(tmp_path, f"by {name}".encode(), original=original)


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_real_photo_with_gps(tmp_path: Path) -> None:
    original = extract_metadata(GPS_PHOTO, "image/jpeg")
    assert original.sensitive.gps
    made = make_copy(
        GPS_PHOTO,
        "image/jpeg",
        tmp_path / "copy.jpg",
        original_metadata=original,
        extract=extract_metadata,
    )
    assert not extract_metadata(tmp_path / "copy.jpg", "image/jpeg").sensitive.any
    assert made.report.content_kind == "jpeg-frame-tables-scans"


@pytest.mark.parametrize(("copy_id", "released"), [("<fresh>", True), ("<original>", False)])
def test_a_regenerated_identifier_is_not_a_leak(
    tmp_path: Path, echo: Echo, copy_id: str, released: bool
) -> None:
    def with_id(_: Path, media_type: str) -> Metadata:
        sensitive = Sensitive(other=("unique-id",), fields=("PDF:ID",))
        return Metadata(media_type, fields={"PDF:ID": copy_id}, sensitive=sensitive)

    original = Metadata("application/x-echo", fields={"PDF:ID": "<original>"})
    source = write(tmp_path, b"x")
    if released:
        make_copy(
            source,
            "application/x-echo",
            tmp_path / "copy",
            original_metadata=original,
            extract=with_id,
        )
    else:
        with pytest.raises(StripError):
            make_copy(
                source,
                "application/x-echo",
                tmp_path / "copy",
                original_metadata=original,
                extract=with_id,
            )


def test_a_pdf_whose_notes_hold_text_is_copied_with_the_text_and_without_the_author(
    tmp_path: Path,
) -> None:
    # ISO 32000-1 §12.5.2: /Contents is the text an annotation displays, part of what the
    # document shows (as a page's text is); /T, its author, is metadata.
    original = tmp_path / "statement.pdf"
    original.write_bytes(witness_pdf())
    found = extract_metadata(original, "application/pdf")
    assert "annotation-text" in found.sensitive.other  # the uploader is still told
    made = make_copy(
        original,
        "application/pdf",
        tmp_path / "copy.pdf",
        original_metadata=found,
        extract=extract_metadata,
    )
    copy = (tmp_path / "copy.pdf").read_bytes()
    assert made.sha256 == hashlib.sha256(copy).hexdigest()
    assert (
        extract_metadata(tmp_path / "copy.pdf", "application/pdf").fields.get("PDF:Annots/Contents")
        == "check"
    )
    assert annotation_authors(copy) == []
    assert AUTHOR.encode() not in copy


def test_a_comment_the_stripper_should_have_removed_still_refuses_the_copy(
    tmp_path: Path, echo: Echo
) -> None:
    def with_comment(_: Path, media_type: str) -> Metadata:
        fields = {"JPEG:COM": "taken by the witness"}
        sensitive = Sensitive(other=("comment",), fields=("JPEG:COM",))
        return Metadata(media_type=media_type, fields=fields, sensitive=sensitive)

    original = tmp_path / "original.x"
    original.write_bytes(b"bytes")
    with pytest.raises(StripError, match="sensitive metadata remains") as refused:
        make_copy(
            original,
            "application/x-echo",
            tmp_path / "copy.x",
            original_metadata=clean(original, "application/x-echo"),
            extract=with_comment,
        )
    assert refused.value.found == ("JPEG:COM",)
