"""Tests for custody.metadata.pdf: synthetic witness documents, the corpus, mutated files."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pikepdf
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pikepdf import Array, Dictionary, Name, String

import custody.metadata.pdf as pdf_module
from custody.metadata.base import StripError, Stripper
from custody.metadata.jpeg import JpegStripper
from custody.metadata.pdf import PdfStripper
from custody.metadata.pdf_clean import clean, clean_trailer
from custody.metadata.pdf_graph import Graph, graph
from tests.custody.metadata.pdf_checks import (
    AUTHOR,
    DESCRIPTIVE_TAGS,
    IDENTITY_TAGS,
    SECRETS,
    TEXT,
    annotation_authors,
    box,
    compressed,
    document,
    exif_jpeg,
    exiftool_leaks,
    exiftool_values,
    full_rewrite_problems,
    jp2,
    leftovers,
    with_incremental_update,
    witness_pdf,
    xmp_packet,
)
from tests.custody.metadata.strip_checks import (
    CORPUS,
    EDITS,
    Batch,
    Edit,
    apply_edits,
    corpus_files,
    digest_of,
    exiftool,
    rel,
    run_batch,
    strip_bytes,
)

STRIPPER: Stripper = PdfStripper()  # mypy checks the protocol
FILES = corpus_files(".pdf")


def strip(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    copy, report = strip_bytes(STRIPPER, data)
    return copy, report.removed


def opened(data: bytes) -> pikepdf.Pdf:  # used as a context manager, which closes it
    return pikepdf.open(io.BytesIO(data))


# --- a witness statement --------------------------------------------------------------------


def test_a_witness_statement_keeps_its_text_and_loses_its_metadata() -> None:
    original = witness_pdf()
    copy, removed = strip(original)
    identities = [AUTHOR, "Witness Collective", "uuid:7f1e0c55-witness", "SN-0042-XYZ"]
    descriptions = ["Kyiv safehouse report", "CustodyWriter 1.0"]
    assert leftovers(original, identities, descriptions) == sorted(identities)  # the check works
    assert leftovers(copy, identities, descriptions) == []
    assert [secret for secret in SECRETS if secret in copy] == []
    assert {
        "Info /Author", "Info /Title", "Info /Company", "document ID", "XMP metadata",
        "PieceInfo", "LastModified", "page thumbnail", "annotation author", "annotation dates",
        "annotation names", "additional actions", "document JavaScript", "JavaScript",
        "embedded JPEG APP1 Exif", "embedded JPEG COM",
    } <= set(removed)  # fmt: skip
    with opened(copy) as pdf:
        assert "/Info" not in pdf.trailer
        page = pdf.pages[0]
        assert TEXT in page.Contents.read_bytes()
        assert [annot.Subtype for annot in page.Annots] == [Name.Text, Name.Popup]
        assert page.Annots[0].Contents == "check"


def test_the_embedded_jpeg_keeps_its_image_data() -> None:
    copy, _ = strip(witness_pdf())
    with opened(copy) as pdf:
        image = pdf.pages[0].Resources.XObject.Im1.read_raw_bytes()
    jpeg = JpegStripper()
    assert digest_of(jpeg, bytes(image)) == digest_of(jpeg, exif_jpeg())
    assert b"Exif" not in image


def test_the_digest_is_the_page_text_and_survives_the_rewrite() -> None:
    original = witness_pdf()
    copy, report = strip_bytes(STRIPPER, original)
    assert report.content_kind == "pdf-text-per-page"
    text = hashlib.sha256(b"P" + struct.pack(">I", 0) + b"T" + struct.pack(">I", len(TEXT)) + TEXT)
    assert report.content_digest == text.hexdigest()
    assert digest_of(STRIPPER, original) == report.content_digest == digest_of(STRIPPER, copy)


def test_a_copy_whose_page_text_differs_from_the_original_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stripper compares the copy's digest with the original's itself (`make_copy`
    relies on that rather than digesting the original a second time)."""
    save = pdf_module._save

    def save_other_text(pdf: pikepdf.Pdf) -> bytes:
        page = pdf.pages[0]
        page.Contents = pdf.make_stream(page.Contents.read_bytes().replace(TEXT, b"X" * len(TEXT)))
        return save(pdf)

    monkeypatch.setattr(pdf_module, "_save", save_other_text)
    with pytest.raises(StripError, match="page text differs"):
        strip(witness_pdf())


def test_a_copy_that_still_holds_metadata_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy is cleaned once more, from one walk of its objects, and must lose nothing."""
    clean = pdf_module.clean
    calls: list[int] = []

    def skip_the_first(
        pdf: pikepdf.Pdf, walked: Graph | None = None, *, seen: Graph | None = None
    ) -> list[str]:
        calls.append(1)
        if len(calls) > 1:
            return clean(pdf, walked, seen=seen)
        if seen is not None:
            seen.extend(graph(pdf))  # walked, removing nothing
        return []

    monkeypatch.setattr(pdf_module, "clean", skip_the_first)
    with pytest.raises(StripError, match="still holds metadata") as refused:
        strip(witness_pdf())
    assert len(calls) == 2
    assert refused.value.found


def test_text_drawn_by_form_xobjects_is_digested_in_place() -> None:
    def with_form(text: bytes) -> bytes:
        def build(pdf: pikepdf.Pdf) -> None:
            form = pdf.make_stream(b"BT /F1 9 Tf [(" + text + b") -20 (!)] TJ ET")
            form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, [0, 0, 99, 99]
            page = pdf.pages[0]
            page.Resources.XObject.Fm1 = form
            page.Contents = pdf.make_stream(b"BT (a) Tj ET /Fm1 Do BT (b) ' ET /Fm1 Do")

        return document(build)

    def shown(*strings: bytes) -> str:
        parts = b"".join(b"T" + struct.pack(">I", len(s)) + s for s in strings)
        return hashlib.sha256(b"P\x00\x00\x00\x00" + parts).hexdigest()

    assert digest_of(STRIPPER, with_form(b"yes")) == shown(b"a", b"yes", b"!", b"b", b"yes", b"!")
    copy, report = strip_bytes(STRIPPER, with_form(b"no"))
    assert report.content_digest == shown(b"a", b"no", b"!", b"b", b"no", b"!")
    assert digest_of(STRIPPER, copy) == report.content_digest


def test_the_copy_is_one_fresh_revision_without_pikepdf_traces() -> None:
    base = document(lambda pdf: setattr(pdf.trailer, "Info", Dictionary(Author=String(AUTHOR))))
    original = with_incremental_update(base, "Counsel Office")
    assert original.count(b"%%EOF") == 2
    assert b"Jane Witness" in original  # in the first revision's Info, which the second replaced
    copy, _ = strip(original)
    assert full_rewrite_problems(copy) == []
    assert b"Jane Witness" not in copy
    assert b"Counsel Office" not in copy
    assert b"pikepdf" not in copy.lower()
    assert b"/Producer" not in copy
    with opened(copy) as copied, opened(base) as source:
        assert copied.trailer.ID[0] == copied.trailer.ID[1] != source.trailer.ID[0]


def test_copies_are_deterministic_and_a_second_strip_finds_nothing() -> None:
    copy, _ = strip(witness_pdf())
    assert strip(witness_pdf())[0] == copy
    again, removed = strip(copy)
    assert removed == ("document ID",)  # the copy's own, content-derived ID
    assert digest_of(STRIPPER, again) == digest_of(STRIPPER, copy)


def test_exiftool_finds_no_metadata_in_the_copy(tmp_path: Path) -> None:
    original, copy = tmp_path / "original.pdf", tmp_path / "copy.pdf"
    original.write_bytes(witness_pdf())
    copy.write_bytes(strip(witness_pdf())[0])
    tags = exiftool([original, copy])
    assert {"PDF:Author", "XMP-dc:Creator", "PDF:Title"} <= set(exiftool_leaks(tags[original]))
    assert exiftool_leaks(tags[copy]) == []


# --- what is kept, what is removed ------------------------------------------------------------


def test_widget_field_names_stay_and_signatures_go() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        signature = Dictionary(
            Type=Name.Sig, Filter=Name("/Adobe.PPKLite"), Name=String(AUTHOR),
            M=String("D:20240501100000Z"), Contents=String(b"\x30\x82"), ByteRange=[0, 1, 2, 3],
        )  # fmt: skip
        look = pdf.make_stream(b"BT (Signed by Jane Witness) Tj ET", Subtype=Name.Form)
        field = pdf.make_indirect(
            Dictionary(
                Type=Name.Annot, Subtype=Name.Widget, FT=Name.Sig, T=String("Signature1"),
                Rect=[0, 0, 50, 20], V=signature, AP=Dictionary(N=look),
            )
        )  # fmt: skip
        name = pdf.make_indirect(
            Dictionary(
                Type=Name.Annot, Subtype=Name.Widget, FT=Name.Tx, T=String("name"),
                V=String("Case 17"), Rect=[0, 30, 50, 50],
            )
        )  # fmt: skip
        pdf.pages[0].Annots = Array([field, name])
        pdf.Root.AcroForm = Dictionary(Fields=Array([field, name]), SigFlags=3)

    copy, removed = strip(document(build))
    assert {"signature", "signature appearance", "signature flags"} <= set(removed)
    assert b"Jane Witness" not in copy
    with opened(copy) as pdf:
        fields = pdf.Root.AcroForm.Fields
        assert [str(f.T) for f in fields] == ["Signature1", "name"]
        assert "/V" not in fields[0]
        assert fields[1].V == "Case 17"


def test_static_xfa_goes_and_dynamic_xfa_is_refused() -> None:
    def xfa(dynamic: bool) -> bytes:
        def build(pdf: pikepdf.Pdf) -> None:
            packet = pdf.make_stream(b"<xdp:xdp><creator>Jane Witness</creator></xdp:xdp>")
            pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=packet)
            if dynamic:
                pdf.Root.NeedsRendering = True

        return document(build)

    copy, removed = strip(xfa(dynamic=False))
    assert "XFA form" in removed
    assert b"Jane Witness" not in copy
    with pytest.raises(StripError, match="dynamic XFA"):
        strip(xfa(dynamic=True))


def test_jpeg_2000_metadata_boxes_go_and_the_codestream_stays() -> None:
    xml = box(b"xml ", b"<x:xmpmeta><dc:creator>Jane Witness</dc:creator></x:xmpmeta>")
    uuid = box(b"uuid", b"\xbe\x7a\xcf\xcb\x97\xa9\x42\xe8\x9c\x71\x99\x94\x91\xe3\xaf\xac GPS")
    image = jp2(xml, uuid)

    def build(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].Resources.XObject.Im1 = pdf.make_stream(
            image, Type=Name.XObject, Subtype=Name.Image, Width=16, Height=16,
            Filter=Name.JPXDecode,
        )  # fmt: skip
        pdf.pages[0].Contents = pdf.make_stream(b"q 16 0 0 16 0 0 cm /Im1 Do Q")

    copy, removed = strip(document(build))
    assert {"JPEG 2000 xml box", "JPEG 2000 uuid box"} <= set(removed)
    with opened(copy) as pdf:
        assert bytes(pdf.pages[0].Resources.XObject.Im1.read_raw_bytes()) == jp2()


def test_a_title_the_pages_show_may_recur_but_an_author_may_not() -> None:
    def bookmarked(title: str, *, author: str = "") -> bytes:
        def build(pdf: pikepdf.Pdf) -> None:
            pdf.trailer.Info = Dictionary(Title=String(title), Author=String(author or "Ann Other"))
            with pdf.open_outline() as outline:
                outline.root.append(pikepdf.OutlineItem(title, 0))

        return document(build, text=title.encode())

    copy, _ = strip(bookmarked("Witness statement"))
    with opened(copy) as pdf:
        assert "/Info" not in pdf.trailer
        assert pdf.Root.Outlines.First.Title == "Witness statement"
    with pytest.raises(StripError, match="values of the original") as refused:
        strip(bookmarked(AUTHOR, author=AUTHOR))
    assert any(found.startswith("Info /Author in object") for found in refused.value.found)


def test_an_author_named_in_a_comment_is_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.Info = Dictionary(Author=String(AUTHOR))
        note = Dictionary(Type=Name.Annot, Subtype=Name.Text, Rect=[0, 0, 9, 9])
        note.Contents = String("Marked by Jane Witness")
        pdf.pages[0].Annots = Array([note])

    with pytest.raises(StripError, match="values of the original") as refused:
        strip(document(build))
    assert refused.value.found == ("Info /Author in the file bytes", "Info /Author in object 3 0")


def test_a_value_inside_another_is_named_too() -> None:
    # "Witness" (a custom Info entry) inside "Jane Witness" (the author): both are named.
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.Info = Dictionary(Author=String(AUTHOR), Manager=String("Witness"))
        note = Dictionary(Type=Name.Annot, Subtype=Name.Text, Rect=[0, 0, 9, 9])
        note.Contents = String("Marked by Jane Witness")
        pdf.pages[0].Annots = Array([note])

    with pytest.raises(StripError, match="values of the original") as refused:
        strip(document(build))
    assert refused.value.found == (
        "Info /Author in the file bytes",
        "Info /Manager in the file bytes",
        "Info /Author in object 3 0",
        "Info /Manager in object 3 0",
    )


def test_an_author_in_the_page_text_is_content() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.Info = Dictionary(Author=String(AUTHOR))

    copy, removed = strip(document(build, text=b"I, Jane Witness, declare"))
    assert removed == ("Info /Author", "document ID")
    with opened(copy) as pdf:
        assert b"Jane Witness" in pdf.pages[0].Contents.read_bytes()


def test_pdftex_figure_info_job_tickets_and_private_data_go() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        figure = pdf.make_stream(b"0 0 m 9 9 l S", Type=Name.XObject, Subtype=Name.Form)
        figure.BBox = [0, 0, 9, 9]
        figure["/PTEX.FileName"] = String("/home/jane/evidence/map.pdf")
        figure["/PTEX.InfoDict"] = Dictionary(Author=String(AUTHOR), ModDate=String("D:2024"))
        pdf.pages[0].Resources.XObject.Fm1 = figure
        pdf.pages[0].Contents = pdf.make_stream(b"/Fm1 Do")
        pdf.Root.JT = Dictionary(A=Array([Dictionary(Dt=String("D:20240501"), JTM=String("X"))]))
        pdf.pages[0].Foo = Dictionary(Private=String("Witness laptop"))

    copy, removed = strip(document(build))
    assert {"pdfTeX included-file data", "job ticket", "application private data"} <= set(removed)
    assert [
        secret for secret in (b"/home/jane", b"Jane", b"D:2024", b"laptop") if secret in copy
    ] == []


@pytest.mark.parametrize(
    ("build", "found"),
    [
        (lambda pdf: setattr(pdf.pages[0], "Stamp", String("D:20240501093000Z")), "a date in"),
        (
            lambda pdf: setattr(pdf.Root, "Extra", compressed(pdf, xmp_packet("Someone Else"))),
            "an XMP packet in",
        ),
    ],
)  # fmt: skip
def test_dates_and_xmp_under_keys_nobody_knows_are_refused(
    build: Callable[[pikepdf.Pdf], object], found: str
) -> None:
    with pytest.raises(StripError, match="values of the original") as refused:
        strip(document(build))
    assert any(place.startswith(found) for place in refused.value.found)


def test_a_jpeg_its_filter_does_not_declare_is_refused() -> None:
    # A mangled /Filter hides an Exif block from the JPEG stripper; the name search finds it.
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.trailer.Info = Dictionary(Author=String(AUTHOR))
        pdf.pages[0].Resources.XObject.Im1 = pdf.make_stream(
            exif_jpeg(), Type=Name.XObject, Subtype=Name.Image, Width=48, Height=32,
            ColorSpace=Name.DeviceRGB, BitsPerComponent=8,
        )  # fmt: skip

    with pytest.raises(StripError, match="values of the original") as refused:
        strip(document(build))
    assert refused.value.found == ("Info /Author in stream 5 0",)


def test_streams_with_unknown_filters_are_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.pages[0].Resources.XObject.Im1 = pdf.make_stream(
            exif_jpeg(), Type=Name.XObject, Subtype=Name.Image, Filter=Name("/DCTDecodf")
        )

    with pytest.raises(StripError, match="unknown filter"):
        strip(document(build))


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "reason"), [("", "PDF is encrypted$"), ("secret", "encrypted with a password")]
)
def test_encrypted_pdfs_are_refused(user: str, reason: str) -> None:
    pdf = pikepdf.open(io.BytesIO(witness_pdf()))
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=user))
    with pytest.raises(StripError, match=reason):
        strip(out.getvalue())


def test_embedded_files_are_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.attachments["notes.txt"] = pikepdf.AttachedFileSpec(pdf, b"Jane Witness")

    with pytest.raises(StripError, match="embedded files"):
        strip(document(build))


def test_inline_jpegs_with_metadata_are_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        inline = b"BI /W 48 /H 32 /CS /RGB /BPC 8 /F /DCT ID\n" + exif_jpeg() + b"\nEI"
        pdf.pages[0].Contents = pdf.make_stream(b"q 48 0 0 32 0 0 cm " + inline + b" Q")

    with pytest.raises(StripError, match="inline JPEG image carries metadata"):
        strip(document(build))


def zero_offset(data: bytes, number: int) -> bytes:
    """Point an xref entry at offset 0, an error qpdf works around (with a warning)."""
    entry = data.index(b"\n", data.index(b"xref\n0 ") + 5) + 1 + 20 * number
    return data[:entry] + b"0" * 10 + data[entry + 10 :]


def test_compression_bombs_are_refused_before_anything_inflates_them() -> None:
    packer, zeros = zlib.compressobj(9), bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(300)) + packer.flush()  # 300 MiB

    def build(pdf: pikepdf.Pdf) -> None:
        stream = pikepdf.Stream(pdf, bomb)
        stream.Filter = Name.FlateDecode
        pdf.Root.Bomb = stream

    with pytest.raises(StripError, match="inflates past 256 MiB"):
        strip(document(build))


def test_bytes_after_the_end_of_flate_data_are_measured_once() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        stream = pikepdf.Stream(pdf, zlib.compress(bytes(1 << 20)) + b"bytes after the end")
        stream.Filter = Name.FlateDecode
        pdf.Root.Extra = stream

    copy, _ = strip(document(build))  # zlib keeps such bytes as input still to come
    with opened(copy) as pdf:
        assert pdf.Root.Extra.read_bytes() == bytes(1 << 20)


def test_bytes_after_the_end_of_flate_data_do_not_reach_the_copy() -> None:
    """No reader shows them, so they could hide anything: an earlier revision, a photo."""
    hidden = xmp_packet("Someone Else") + exif_jpeg()

    def build(pdf: pikepdf.Pdf) -> None:
        content = pdf.pages[0].Contents
        content.write(zlib.compress(content.read_bytes()) + hidden, filter=Name.FlateDecode)

    original = document(build)
    assert hidden in original
    copy, _ = strip(original)
    assert b"Someone Else" not in copy
    assert b"CustodyCam" not in copy


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: b"%!PS-Adobe-3.0\n" + d[9:], "cannot be read"),
        (lambda d: d[: d.rindex(b"startxref")], "cannot be read"),
        (lambda d: d.replace(b"startxref\n", b"startxref\n1"), "cannot be read"),
        (lambda d: zero_offset(d, 3), "damaged: \\(object 3 0\\): object has offset 0"),
        (lambda d: d.replace(b"stream\n", b"stream\r", 1), "damaged"),
        (lambda d: b"", "cannot be read"),
    ],
)  # fmt: skip
def test_damaged_files_are_refused_not_repaired(
    damage: Callable[[bytes], bytes], reason: str
) -> None:
    with pytest.raises(StripError, match=reason):
        strip(damage(document(lambda _: None)))


# --- the corpus -------------------------------------------------------------------------------

# Corpus files refused, and why (see SOURCES.md): the damaged ones are pdf.js and pikepdf
# test files for parser robustness; the two leaks are values the stripper was right to find.
REFUSED = {
    "pdfjs/ThuluthFeatures.pdf": "damaged: (object 5 0, offset 170): stream keyword",
    "pdfjs/annotation-caret-ink.pdf": "damaged: (object 29 0): object has offset 0",
    "pdfjs/annotation-link-text-popup.pdf": "damaged: (object 48 0): object has offset 0",
    "pdfjs/annotation-polyline-polygon.pdf": "damaged: (object 32 0, offset 86586): expected",
    "pdfjs/annotation-square-circle.pdf": "damaged: (object 31 0): object has offset 0",
    "pdfjs/basicapi.pdf": "damaged: (object 38 0, offset 104571): dictionary has duplicated key",
    "pdfjs/issue14814.pdf": "damaged: xref entry for the xref stream itself is missing",
    "pdfjs/issue20516.pdf": "damaged: (object 11 0): object has offset 0",
    "pikepdf/tests/resources/content-stream-errors.pdf": "damaged: page object 3 0 stream 7 0",
    "pdfjs/issue14256.pdf": "cannot be read: parsing inline",
    "pikepdf/tests/resources/ctm_cm.pdf": "cannot be read: (offset 4798): xref not found",
    "pikepdf/tests/resources/cyclic-toc.pdf": "cannot be read: (trailer, offset 898): trailer",
    "pikepdf/tests/resources/fuzz/378014596.pdf": "cannot be read: can't find startxref",
    "pdfjs/bug1815476.pdf": "PDF is encrypted",
    "pdfjs/bug900822.pdf": "PDF is encrypted",
    "pdfjs/issue17069.pdf": "PDF is encrypted",
    "pdfjs/issue17215.pdf": "PDF is encrypted",
    "pdfjs/issue9972-1.pdf": "PDF is encrypted",
    "pdfjs/issue9972-2.pdf": "PDF is encrypted",
    "pdfjs/issue9972-3.pdf": "PDF is encrypted",
    "pdfjs/pr6531_2.pdf": "PDF is encrypted",
    "pikepdf/tests/resources/form_dd0293.pdf": "PDF is encrypted",
    "pikepdf/tests/resources/graph-encrypted.pdf": "PDF is encrypted with a password",
    "pdfjs/annotation-fileattachment.pdf": "embedded files",
    "pdfjs/bug1937438_af_from_latex.pdf": "embedded files",
    # A review-state note Acrobat wrote: "Unmarked angett av Jonas", by its author Jonas.
    "pdfjs/ZapfDingbats.pdf": "values of the original",
    # dc:creator "Antenna House, Inc." is also the text of a link annotation.
    "pdfjs/issue17730.pdf": "values of the original",
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(STRIPPER, FILES, tmp_path_factory.mktemp("pdf"))


def test_corpus_files_are_stripped_or_refused_for_known_reasons(batch: Batch) -> None:
    refused = batch.refused()
    assert {name: reason for name, reason in refused.items() if name not in REFUSED} == {}
    assert {
        name: REFUSED[name] for name in REFUSED if REFUSED[name] not in refused.get(name, "")
    } == {}
    assert len(batch.stripped) == len(FILES) - len(REFUSED) > 120


def test_exiftool_finds_no_metadata_in_any_copy(batch: Batch) -> None:
    found = {rel(o.source): exiftool_leaks(batch.tags[o.copy]) for o in batch.stripped if o.copy}
    assert {name: keys for name, keys in found.items() if keys} == {}
    # The check can fail: the originals are full of what the copies lack.
    assert sum(bool(exiftool_leaks(batch.tags[o.source])) for o in batch.stripped) > 120


def test_copies_have_the_pages_and_page_text_of_the_original(batch: Batch) -> None:
    for outcome in batch.stripped:
        assert outcome.copy is not None
        assert outcome.report is not None
        copy, name = outcome.copy.read_bytes(), rel(outcome.source)
        with opened(outcome.source.read_bytes()) as original, opened(copy) as copied:
            assert len(copied.pages) == len(original.pages), name
        expected = outcome.report.content_digest
        assert digest_of(STRIPPER, outcome.source.read_bytes()) == expected, name
        assert digest_of(STRIPPER, copy) == expected, name


def test_copies_are_one_revision_of_reachable_objects(batch: Batch) -> None:
    found = {
        rel(o.source): full_rewrite_problems(o.copy.read_bytes()) for o in batch.stripped if o.copy
    }
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_copies_hold_none_of_the_original_values(batch: Batch) -> None:
    found, checked = {}, 0
    for outcome in batch.stripped:
        assert outcome.copy is not None
        record, original = batch.tags[outcome.source], outcome.source.read_bytes()
        identities = [*exiftool_values(record, IDENTITY_TAGS), *annotation_authors(original)]
        descriptions = exiftool_values(record, DESCRIPTIVE_TAGS)
        checked += bool(leftovers(original, identities, descriptions))
        found[rel(outcome.source)] = leftovers(outcome.copy.read_bytes(), identities, descriptions)
    assert {name: values for name, values in found.items() if values} == {}
    assert checked > 100  # the search finds the values in the originals


# --- mutated files -----------------------------------------------------------------------------

MAX_SEED = 40_000  # bytes: qpdf's time on a mutant grows with the objects it must examine
SEED_NAMES = (
    "exiftool/t/images/PDF.pdf", "pdfjs/issue2391-1.pdf", "pdfjs/js-authors.pdf",
    "pdfjs/file_pdfjs_form.pdf", "pdfjs/issue16067.pdf", "pikepdf/tests/resources/outlines.pdf",
)  # fmt: skip
SEEDS = [witness_pdf()] + [
    (CORPUS / name).read_bytes()
    for name in SEED_NAMES
    if (CORPUS / name).is_file() and (CORPUS / name).stat().st_size <= MAX_SEED
]
# What a mutant's copy never holds: names and identifiers (searched for as the original's
# values) and dates (searched for as such). Private data under a key whose name a byte flip
# mangled is not among them: nothing marks it as metadata any more.
MUTANT_SECRETS = (b"Jane Witness", b"uuid:7f1e0c55-witness", b"D:20240501")


def seed_secrets(data: bytes) -> list[bytes]:
    """The seed's own Info /Author, read before any mutation, and the witness's secrets."""
    with opened(data) as pdf:
        info = pdf.trailer.get("/Info")
        author = info.get("/Author") if isinstance(info, Dictionary) else None
    text = str(author).strip() if isinstance(author, String) else ""
    return [*MUTANT_SECRETS, *([text.encode()] if len(text) >= 4 else [])]


def check_pdf_mutant(data: bytes, secrets: list[bytes]) -> bool:
    """Strip a damaged file: StripError, or a copy with the same text and no secret."""
    try:
        copy, report = strip_bytes(STRIPPER, data)
    except StripError:
        return False
    assert digest_of(STRIPPER, data) == report.content_digest == digest_of(STRIPPER, copy)
    with opened(data) as original, opened(copy) as copied:
        assert len(copied.pages) == len(original.pages)
    assert [secret for secret in secrets if secret in copy] == []
    assert full_rewrite_problems(copy) == []
    return True


SECRETS_OF_SEEDS = [seed_secrets(seed) for seed in SEEDS]


@settings(
    max_examples=400, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow]
)
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_mutants_are_stripped_clean_or_refused(index: int, edits: list[Edit]) -> None:
    stripped = check_pdf_mutant(apply_edits(SEEDS[index], edits), SECRETS_OF_SEEDS[index])
    event("stripped" if stripped else "refused")


def test_exiftool_finds_no_metadata_in_copies_of_mutants(tmp_path: Path) -> None:
    # Byte flips keep every offset, so many mutants still parse: copies to check, seeded.
    rng = random.Random(20261128)
    paths = []
    for number in range(80):
        flips = [(0, rng.random(), rng.randbytes(1)) for _ in range(rng.randrange(1, 4))]
        try:
            copy, _ = strip_bytes(STRIPPER, apply_edits(SEEDS[number % len(SEEDS)], flips))
        except StripError:
            continue
        paths.append(tmp_path / f"{number}.pdf")
        paths[-1].write_bytes(copy)
    assert len(paths) >= 20, "too few mutants survive to test anything"
    tags = exiftool(paths)
    assert {
        path.name: exiftool_leaks(tags[path]) for path in paths if exiftool_leaks(tags[path])
    } == {}


def test_the_objects_clean_walks_are_those_the_copy_holds() -> None:
    # The passes after `clean` reuse its walk: it must be the graph without what went (the
    # XMP streams, the thumbnail, the PieceInfo data), as a fresh walk finds it, in its order.
    with pikepdf.open(io.BytesIO(witness_pdf()), conversion_mode="explicit") as pdf:
        before = [owner for _, owner in graph(pdf)]
        clean_trailer(pdf)
        seen: Graph = []
        clean(pdf, seen=seen)
        after = [owner for _, owner in graph(pdf)]
        assert [owner for _, owner in seen] == after
        assert len(set(before) - set(after)) >= 4, "the Info, XMP and thumbnail objects went"
