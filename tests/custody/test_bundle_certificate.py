"""Tests for custody.bundle.certificate: the PDF opens, and its text carries every hash."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from custody.bundle.certificate import DEFAULT_FONT_DIR, _needs_shaping, render_certificate
from custody.bundle.model import Contents
from custody.errors import BundleError
from tests.custody.test_bundle_documents import make_bag, make_contents, sha256

CYRILLIC = "Протокол допроса.jpg"
ARABIC = "صورة الدليل.jpg"
ACCENTED = "Déclaration de témoin.jpg"

needs_dejavu = pytest.mark.skipif(
    not (DEFAULT_FONT_DIR / "DejaVuSans.ttf").is_file(), reason="needs the DejaVu fonts"
)


def three_exhibits(*, trusted: bool = True) -> Contents:
    """A Cyrillic original, an Arabic one, and a sharing copy of the first."""
    files = [(CYRILLIC, b"photo one"), (ARABIC, b"photo two")]
    return make_contents(make_bag(files, copy_of_first=True), trusted=trusted)


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def hex_runs(text: str) -> set[str]:
    """Every unbroken 64-hex-digit run in the text: what a reader copies as a SHA-256."""
    return set(re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text))


def every_hash(contents: Contents) -> set[str]:
    hashes = {record.sha256 for record in contents.exhibits} | {contents.info.manifest_sha256}
    for record in contents.exhibits:
        if record.copy_of is not None:
            hashes |= {record.copy_of.original_sha256, record.copy_of.content_sha256}
    return hashes


@needs_dejavu
def test_certificate_carries_every_hash_and_unicode_filename() -> None:
    contents = three_exhibits()
    text = text_of(render_certificate(contents))
    assert every_hash(contents) <= hex_runs(text)
    assert sha256(b"photocopy") in hex_runs(text)  # the sharing copy's own digest
    assert CYRILLIC in text
    assert "Протокол допроса.shared.jpg" in text
    assert "APP1 Exif; APP13 IPTC" in text
    assert "jpeg-scans" in text
    assert "?" not in text.split("Exhibit 1:")[1].split("\n")[0]


@needs_dejavu
def test_certificate_embeds_dejavu_and_draws_arabic_letters() -> None:
    pdf = render_certificate(three_exhibits())
    reader = PdfReader(io.BytesIO(pdf))
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("DejaVuSansMono" in name for name in fonts)
    assert not any("Helvetica" in name for name in fonts)
    text = text_of(pdf)
    assert ARABIC.removesuffix(".jpg") in text  # shaped runs keep their logical order
    # Shaped, the letters join: the subset holds the contextual forms HarfBuzz chose for
    # "صورة الدليل" (initial ص, final و; initial ل, final د, medial ي, final ل).
    joined = {"uniFEBB", "uniFEEE", "uniFEDF", "uniFEAA", "uniFEF4", "uniFEDE"}
    assert joined <= glyph_names(reader, "DejaVuSansBook")


def glyph_names(reader: PdfReader, font: str) -> set[str]:
    """The glyphs of the embedded subset of `font` in the certificate."""
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            embedded = ref.get_object()
            if str(embedded["/BaseFont"]).endswith(f"+{font}"):
                descendant = embedded["/DescendantFonts"][0].get_object()
                data = descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()
                return set(TTFont(io.BytesIO(data)).getGlyphOrder())
    raise AssertionError(f"{font} is not embedded")


def test_only_lines_that_need_it_are_shaped() -> None:
    assert _needs_shaping(ARABIC)
    assert _needs_shaping("תמונה.jpg")  # Hebrew: right to left
    assert _needs_shaping("Cafe\u0301.jpg")  # a combining accent
    assert not _needs_shaping(CYRILLIC)
    assert not _needs_shaping("Exhibit 1: photo.jpg, 2026-03-01 09:30 UTC")


def test_core_font_fallback_replaces_what_latin1_lacks(tmp_path: Path) -> None:
    contents = three_exhibits()
    contents = replace(contents, exhibits=(replace(contents.exhibits[0], filename=ACCENTED),
                                           *contents.exhibits[1:]))  # fmt: skip
    pdf = render_certificate(contents, font_dir=tmp_path)
    reader = PdfReader(io.BytesIO(pdf))
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert fonts <= {"/Helvetica", "/Helvetica-Bold", "/Courier"}
    text = text_of(pdf)
    assert every_hash(contents) <= hex_runs(text)
    assert ACCENTED in text  # Latin-1 prints as it is
    assert "??????? ???????.shared.jpg" in text  # Cyrillic does not
    assert "Médecins du Droit" in text


@needs_dejavu
def test_certificate_tells_the_collection_time_and_chain_of_custody() -> None:
    contents = three_exhibits()
    text = " ".join(text_of(render_certificate(contents)).split())
    assert "no later than 2026-11-28 22:05:30 UTC by a trusted time-stamp" in text
    assert "p_abc (a pseudonym)" in text
    assert "collected into case c_123 by p_abc (log entry 0)" in text
    assert "this sharing copy was made from the original" in text
    assert "Detentions in the north" in text
    assert contents.vkey in text.replace(" ", "")
    assert "VERIFY.md" in text
    untrusted = " ".join(text_of(render_certificate(three_exhibits(trusted=False))).split())
    assert "no trusted timestamp yet" in untrusted
    assert "by a trusted time-stamp" not in untrusted


@needs_dejavu
def test_certificate_is_the_same_bytes_for_the_same_bag() -> None:
    first = render_certificate(three_exhibits())
    assert render_certificate(three_exhibits()) == first
    assert PdfReader(io.BytesIO(first)).metadata.creation_date == datetime(
        2026, 12, 1, 9, 30, tzinfo=UTC
    )


def test_certificate_of_many_exhibits_spans_pages_and_keeps_every_hash(tmp_path: Path) -> None:
    files = [(f"IMG_{n:04d}.jpg", f"photo {n}".encode()) for n in range(40)]
    contents = make_contents(make_bag(files, copy_of_first=True))
    pdf = render_certificate(contents, font_dir=tmp_path)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 5
    assert every_hash(contents) <= hex_runs(text_of(pdf))
    assert f"Page {len(reader.pages)}/{len(reader.pages)}" in reader.pages[-1].extract_text()


def test_certificate_refuses_a_bag_date_without_a_time_zone(tmp_path: Path) -> None:
    contents = three_exhibits()
    contents = replace(contents, info=replace(contents.info, created="2026-12-01T09:30:00"))
    with pytest.raises(BundleError, match="time zone"):
        render_certificate(contents, font_dir=tmp_path)


@needs_dejavu
def test_characters_dejavu_lacks_print_as_question_marks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    contents = three_exhibits()
    first = replace(contents.exhibits[0], filename="証拠 1.jpg")
    contents = replace(contents, exhibits=(first, *contents.exhibits[1:]))
    text = text_of(render_certificate(contents))
    assert "Exhibit 1: ?? 1.jpg (original)" in text
    assert "missing" not in caplog.text  # fpdf2 would log the glyphs it could not draw


def test_a_name_wider_than_the_page_wraps_without_losing_characters(tmp_path: Path) -> None:
    name = "W" * 116 + ".jpg"
    contents = make_contents(make_bag([(name, b"photo one")]))
    text = text_of(render_certificate(contents, font_dir=tmp_path))
    assert f"data/001-{name}" in text.replace("\n", "")
    assert sha256(b"photo one") in hex_runs(text)
