"""Tests for custody.metadata.office: made-up packages, the corpus, and mutated packages."""

from __future__ import annotations

import io
import random
import re
import tracemalloc
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import StripError, Stripper, StripReport
from custody.metadata.office import OfficeStripper
from custody.metadata.office_zip import PackageLimits
from tests.custody.metadata import office_samples as sample
from tests.custody.metadata.office_checks import (
    OFFICE_SUFFIXES,
    check_copy,
    check_layout,
    check_readable,
    leaked,
    members,
    property_leaks,
    property_records,
    secrets,
)
from tests.custody.metadata.office_mutants import (
    GIF,
    OPS,
    Stream,
    added,
    bzip2,
    encrypted,
    mutate,
    nul_name,
    rezip,
    seeded_ops,
    understated,
)
from tests.custody.metadata.strip_checks import (
    CORPUS,
    EDITS,
    Edit,
    apply_edits,
    corpus_files,
    exiftool,
    rel,
    strip_bytes,
)

STRIPPER: Stripper = OfficeStripper()  # mypy checks the protocol
FILES = corpus_files(*OFFICE_SUFFIXES)
# Corpus files refused, and why (see SOURCES.md: mat2's files are built to be awkward).
REFUSED = {
    "mat2-tests/tests/data/broken_xml_content_types.docx": "[Content_Types].xml is not well",
    "mat2-tests/tests/data/malformed_content_types.docx": "[Content_Types].xml is not well",
    "mat2-tests/tests/data/no_content_types.docx": "no [Content_Types].xml",
    "mat2-tests/tests/data/embedded.docx": "word/media/setup.py: text/plain",
    "mat2-tests/tests/data/embedded.odt": "Pictures/setup.py: text/plain",
    "mat2-tests/tests/data/embedded_corrupted.docx": "docProps/dirty.xml: unknown package member",
    "mat2-tests/tests/data/embedded_corrupted.odt": "content.xml is not well-formed",
    "odfpy/samples/spreadsheet-with-macro.ods": "embedded object (and 6 more)",
    "odfpy/tests/examples/emb_spreadsheet.odp": "embedded object (and 11 more)",
    "odfpy/tests/examples/nasty.odt": "content.xml has a DTD",
    "python-docx/features/steps/test_files/shp-inline-shape-access.docx": "embedded object",
}


def strip(data: bytes, stripper: Stripper = STRIPPER) -> tuple[bytes, StripReport]:
    return strip_bytes(stripper, data)


def part(copy: bytes, name: str) -> str:
    return members(copy)[name].decode()


# --- made-up packages --------------------------------------------------------------------


def test_docx_loses_people_times_and_properties_but_not_its_text() -> None:
    original = sample.docx(sample.tracked(sample.TEXT), sample.paragraph("Second."))
    assert check_copy(STRIPPER, original, sample.SECRETS)
    copy, report = strip(original)
    check_readable(original, copy)
    document = part(copy, "word/document.xml")
    assert 'w:ins w:id="1" w:author="" w:initials=""' in document
    assert "w:date" not in document
    assert "w:rsidR" not in document
    assert sample.TEXT in document
    assert "<w:delText>gone</w:delText>" in document
    assert '<w:comment w:id="0" w:author="" w:initials="">' in part(copy, "word/comments.xml")
    kept = set(members(copy))
    assert not kept & {"docProps/custom.xml", "docProps/thumbnail.jpeg", "word/people.xml"}
    assert "https://example.org/report" in part(copy, "word/_rels/document.xml.rels")
    assert "custom.xml" not in part(copy, "[Content_Types].xml")
    # Every extended property goes (issue: core/app/custom properties), statistics too.
    assert part(copy, "docProps/app.xml").endswith('extended-properties"/>')
    assert {"docProps/core.xml dc:creator", "word/settings.xml w:attachedTemplate"} <= set(
        report.removed
    )
    assert b"Exif" not in members(copy)["word/media/image1.jpeg"]
    assert report.content_kind == "office-document-text"


def test_the_digest_follows_the_text_and_nothing_else() -> None:
    def digest(data: bytes) -> str:
        return STRIPPER.content_digest(io.BytesIO(data))

    base = digest(sample.docx(sample.tracked(sample.TEXT)))
    assert digest(sample.docx(sample.tracked(sample.TEXT).replace(sample.NAME, "X"))) == base
    rsid = digest(sample.docx(sample.paragraph("Second.", rsid="00000001")))
    assert digest(sample.docx(sample.paragraph("Second.", rsid="00FF00FF"))) == rsid
    assert digest(sample.docx(sample.tracked(sample.TEXT + "!"))) != base
    assert digest(sample.docx(sample.tracked(sample.TEXT.replace("dawn", "dusk")))) != base
    odt = digest(sample.odt(sample.ANNOTATED, sample.CHANGES))
    assert digest(sample.odt(sample.ANNOTATED.replace(sample.NAME, "X"), sample.CHANGES)) == odt
    assert digest(sample.odt(sample.ANNOTATED.replace("plates", "cars"), sample.CHANGES)) != odt


def test_prefixes_and_ignorable_declarations_survive() -> None:
    copy, _ = strip(sample.docx(sample.paragraph(sample.TEXT)))
    document = part(copy, "word/document.xml")
    # mc:Ignorable names w14 by prefix: it must stay declared, under that prefix, unused.
    assert 'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"' in document
    assert 'mc:Ignorable="w14"' in document
    assert "<w:body><w:p>" in document


def test_rules_follow_namespaces_not_prefixes() -> None:
    body = f'<ww:p xmlns:ww="{sample.W}"><ww:ins ww:author="{sample.NAME}" ww:rsidR="1"/></ww:p>'
    copy, _ = strip(sample.docx(body))
    assert '<ww:ins ww:author=""/>' in part(copy, "word/document.xml")


_SPLIT_AUTHOR = (
    '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> AUTH</w:instrText></w:r>'
    '<w:r><w:instrText>OR </w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/>'
    '</w:r><w:r><w:t>Jane</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
)


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ('<w:fldSimple w:instr=" AUTHOR \\* MERGEFORMAT "/>', "AUTHOR field prints metadata"),
        (_SPLIT_AUTHOR, "AUTHOR field prints metadata"),
        ('<w:fldSimple w:instr=" DOCPROPERTY Company "/>', "DOCPROPERTY field prints"),
        ("<w:r><w:instrText>lastsavedby</w:instrText></w:r>", "LASTSAVEDBY field prints"),
        ("<w:fldSimple w:instr=' INCLUDEPICTURE \"C:\\x.jpg\" '/>", "INCLUDEPICTURE field links"),
        ("<w:fldSimple w:instr=' HYPERLINK \"file:///C:/x\" '/>", "HYPERLINK field to a local"),
    ],
)
def test_fields_that_print_a_person_or_link_a_file_are_refused(field: str, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(sample.docx(f"<w:p>{field}</w:p>"))


def test_pictures_named_by_their_path_lose_the_name() -> None:
    path = r"C:\Users\jwitness\Pictures\plates.jpg"
    doc_pr = f'<wp:docPr xmlns:wp="urn:wp" id="1" name="{path}" descr="{path}" title="Plates"/>'
    copy, _ = strip(sample.docx(f"<w:p><w:r>{doc_pr}</w:r></w:p>"))
    assert '<wp:docPr xmlns:wp="urn:wp" id="1" name="" descr="" title="Plates"/>' in part(
        copy, "word/document.xml"
    )


def test_other_fields_are_kept() -> None:
    field = '<w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple>'
    copy, _ = strip(sample.docx(f"<w:p>{field}</w:p>"))
    assert 'w:instr=" PAGE "' in part(copy, "word/document.xml")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (b'"file:///C:/Users/jwitness/plates.jpg" TargetMode="External"', "external 'image'"),
        (b'"file:///C:/Users/jwitness/plates.jpg"', "external 'image'"),  # Internal, by default
        (b'"media/image1.jpeg" TargetMode="external"', "TargetMode 'external'"),
    ],
)
def test_linked_files_are_refused(target: bytes, reason: str) -> None:
    rels = members(sample.docx())["word/_rels/document.xml.rels"]
    linked = rels.replace(b'"media/image1.jpeg"', target)
    with pytest.raises(StripError, match=reason):
        strip(sample.docx(parts={"word/_rels/document.xml.rels": linked}))


def test_hyperlinks_to_local_files_are_refused() -> None:
    rels = members(sample.docx())["word/_rels/document.xml.rels"]
    linked = rels.replace(b"https://example.org/report", b"\\\\fileserver\\jwitness\\notes")
    with pytest.raises(StripError, match="hyperlink to a local file"):
        strip(sample.docx(parts={"word/_rels/document.xml.rels": linked}))


def test_xlsx_loses_its_people_and_paths() -> None:
    original = sample.xlsx()
    assert check_copy(STRIPPER, original, sample.SECRETS)
    copy, _ = strip(original)
    assert "<authors><author/></authors>" in part(copy, "xl/comments1.xml")
    assert 'displayName=""' in part(copy, "xl/persons/person.xml")
    assert "dT=" not in part(copy, "xl/threadedComments/threadedComment1.xml")
    # A table's displayName is its name in formulas, not a person's.
    assert 'displayName="Evidence"' in part(copy, "xl/tables/table1.xml")


def test_pptx_loses_its_comment_authors() -> None:
    original = sample.pptx()
    assert check_copy(STRIPPER, original, sample.SECRETS)
    copy, _ = strip(original)
    assert 'name="" initials=""' in part(copy, "ppt/commentAuthors.xml")
    assert 'userId="" providerId=""' in part(copy, "ppt/authors.xml")


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        # An element a later schema (or damage) names otherwise, keeping its attributes.
        ("xl/persons/person.xml", '<persoo displayName="{n}" id="{{P1}}" userId="{u}"/>'),
        ("xl/persons/person.xml", '<person id="{{P1}}" email="{u}" nickname="{n}"/>'),
        ("ppt/authors.xml", '<p188:contributor id="{{A2}}" name="{n}" mail="{u}"/>'),
        ("ppt/commentAuthors.xml", '<p:cmAuthor id="1" name="{n}" alias="{u}" lastIdx="1"/>'),
    ],
)
def test_a_part_that_lists_people_loses_every_name_even_under_unknown_names(
    name: str, entry: str
) -> None:
    account = "jwitness@example.org"
    original = sample.xlsx() if name.startswith("xl/") else sample.pptx()
    listed = members(original)[name].decode()
    end = listed.rindex("</")
    mutant = listed[:end] + entry.format(n=sample.NAME, u=account) + listed[end:]
    original = mutate_part(original, name, mutant.encode())
    copy, _ = strip(original)
    kept = part(copy, name)
    assert sample.NAME not in kept
    assert account not in kept
    assert 'id="' in kept  # what links the comments to their authors stays


def test_an_account_id_is_blanked_on_any_element_of_any_part() -> None:
    sheet = members(sample.xlsx())["xl/worksheets/sheet1.xml"].decode()
    marked = sheet.replace("<sheetData>", '<reviewer userId="jwitness@example.org"/><sheetData>')
    copy, _ = strip(mutate_part(sample.xlsx(), "xl/worksheets/sheet1.xml", marked.encode()))
    assert 'userId=""' in part(copy, "xl/worksheets/sheet1.xml")


def mutate_part(package: bytes, name: str, data: bytes) -> bytes:
    """`package` with the member `name` holding `data` instead."""
    parts = members(package)
    parts[name] = data
    return sample.zip_package(parts)


def test_odt_loses_people_times_settings_and_thumbnail() -> None:
    original = sample.odt(sample.ANNOTATED, sample.CHANGES, mimetype_last=True)
    assert check_copy(STRIPPER, original, sample.SECRETS)
    copy, report = strip(original)
    check_readable(original, copy)
    content = part(copy, "content.xml")
    assert "<dc:creator/>" in content
    assert "creator-initials" not in content
    assert "<dc:date>1980-01-01T00:00:00</dc:date></office:change-info>" in content
    assert content.count("<dc:date>") == 1
    assert "Check the plates." in content
    meta = part(copy, "meta.xml")
    assert "<office:meta><meta:document-statistic" in meta
    assert "generator" not in meta
    assert "PrinterName" not in part(copy, "settings.xml")
    assert "IsKernAsianPunctuation" in part(copy, "settings.xml")
    assert "Thumbnails/thumbnail.png" not in members(copy)
    assert "Thumbnails" not in part(copy, "META-INF/manifest.xml")
    assert "Thumbnails/thumbnail.png (thumbnail)" in report.removed
    assert copy[30:38] == b"mimetype"
    assert copy[38:77] == sample.ODF_TEXT.encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<text:p><text:author-name>Jane</text:author-name></text:p>", "text:author-name"),
        ("<text:p><text:sender-email>j@w.org</text:sender-email></text:p>", "sender-email"),
        (
            '<draw:frame><draw:image xlink:href="file:///home/jwitness/plates.png"/></draw:frame>',
            "linked to a file outside",
        ),
        ('<draw:frame><draw:image xlink:href="../plates.png"/></draw:frame>', "outside"),
        ('<text:p><text:a xlink:href="file:///home/jwitness/a.odt">a</text:a></text:p>', "local"),
    ],
)
def test_odt_with_person_fields_or_links_is_refused(body: str, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(sample.odt(body))


def test_pictures_in_the_package_are_not_links() -> None:
    body = '<draw:frame><draw:image xlink:href="Pictures/photo.jpg"/></draw:frame>'
    copy, _ = strip(sample.odt(body))
    assert b"Exif" not in members(copy)["Pictures/photo.jpg"]


def test_encrypted_odf_is_refused() -> None:
    manifest = members(sample.odt())["META-INF/manifest.xml"].replace(
        b'media-type="text/xml"/>',
        b'media-type="text/xml"><manifest:encryption-data/></manifest:file-entry>',
    )
    with pytest.raises(StripError, match="encrypted ODF"):
        strip(sample.odt(parts={"META-INF/manifest.xml": manifest}))


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0", "word/vbaProject.bin: macros"),
        ("word/embeddings/oleObject1.bin", b"x", "embedded object"),
        ("word/activeX/activeX1.xml", b"<a/>", "ActiveX control"),
        ("word/fonts/font1.odttf", b"x", "embedded font"),
        ("word/notes.xml", b"<a/>", "word/notes.xml: unknown package member"),
        ("word/media/image2.gif", GIF, "word/media/image2.gif: a GIF without an image"),
        ("word/media/image4.bmp", b"BM" + bytes(60), "image/bmp is not an image type"),
        ("word/media/image3.png", b"\x89PNG\r\n\x1a\nbroken", "word/media/image3.png: "),
    ],
)
def test_members_off_the_allowlist_are_refused_by_name(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(StripError, match=reason.replace(".", r"\.")) as caught:
        strip(sample.docx(parts={name: data}))
    assert name in caught.value.found


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Object 1/content.xml", "embedded object"),
        ("ObjectReplacements/Object 1", "embedded object"),
        ("Basic/Standard/Module1.xml", "macros"),
        ("Pictures/logo.gif", "a GIF without an image"),
        ("secrets.txt", "unknown package member"),
    ],
)
def test_odf_members_off_the_allowlist_are_refused(name: str, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(sample.odt(parts={name: GIF}))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (added("WORD/document.xml"), "duplicate ZIP member"),
        (added("../evil.xml"), "unsafe ZIP member name"),
        (added("/etc/evil.xml"), "unsafe ZIP member name"),
        (added("word\\evil.xml"), "unsafe ZIP member name"),
        (added("C:/evil.xml"), "unsafe ZIP member name"),
        (bzip2, "compression method 12"),
        (lambda items: items.pop(0), "no \\[Content_Types\\].xml"),
        (lambda items: items.remove(items[6]), "no main document part"),
    ],
)
def test_unsafe_packages_are_refused(change: Any, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(rezip(sample.docx(), change))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(encrypted, "encrypted ZIP member"), (nul_name, "unsafe ZIP member name")],
)
def test_damaged_headers_are_refused(damage: Any, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(damage(sample.docx()))


def test_limits_are_checked_before_inflating() -> None:
    bomb = sample.docx(parts={"word/footnotes.xml": b"<a>" + b" " * 3_000_000 + b"</a>"})
    small = OfficeStripper(limits=PackageLimits(member_bytes=1_000_000))
    with pytest.raises(StripError, match="expands to 3000007 bytes"):
        strip(bomb, small)
    with pytest.raises(StripError, match="ZIP members expand to"):
        strip(bomb, OfficeStripper(limits=PackageLimits(total_bytes=2_000_000)))
    with pytest.raises(StripError, match="a ZIP directory of 14 members"):
        strip(bomb, OfficeStripper(limits=PackageLimits(members=10)))


def test_a_zip_bomb_is_refused_in_flat_memory() -> None:
    bomb = sample.docx(parts={"word/footnotes.xml": bytes(80 << 20)})  # 80 MiB in 80 kB
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(StripError, match="expands to 83886080 bytes"):
            strip(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_a_member_larger_than_its_header_says_is_refused() -> None:
    data = sample.docx(parts={"word/footnotes.xml": b"<a>" + b" " * 5000 + b"</a>"})
    with pytest.raises(StripError, match=re.escape("damaged ZIP (word/footnotes.xml): Bad CRC")):
        strip(understated(data, "word/footnotes.xml", 100))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><d>&b;</d>', "has a DTD"),
        (b'<!DOCTYPE d SYSTEM "file:///etc/passwd"><d/>', "has a DTD"),
        (b"<w:document><w:body/></w:document>", "undeclared namespace prefix 'w'"),
        (f'<w:document xmlns:w="{sample.W}"><e></w:document>'.encode(), "not well-formed XML"),
        (f'<w:document xmlns:w="{sample.W}"/><e/>'.encode(), "is not well-formed XML"),
        (b"<Properties><Company>Kyiv Legal Aid</Company></Properties>", "not 'document'"),
    ],
)
def test_hostile_xml_is_refused(document: bytes, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip(sample.docx(parts={"word/document.xml": document}))


def test_an_unseekable_source_is_refused_and_an_unseekable_sink_gets_the_same_bytes() -> None:
    original = sample.odt(sample.ANNOTATED)
    with pytest.raises(StripError, match="seekable"):
        STRIPPER.strip(Stream(original), io.BytesIO())  # type: ignore[arg-type]
    sink = Stream()
    STRIPPER.strip(io.BytesIO(original), sink)  # type: ignore[arg-type]
    assert bytes(sink.written) == strip(original)[0]


# --- the corpus --------------------------------------------------------------------------


@dataclass
class Copies:
    copies: dict[str, bytes]  # corpus name -> copy
    reports: dict[str, StripReport]
    refused: dict[str, str]  # corpus name -> reason


@pytest.fixture(scope="module")
def corpus() -> Copies:
    if not FILES:
        pytest.skip("no corpus at ../shared/corpus")
    result = Copies({}, {}, {})
    for path in FILES:
        try:
            copy, report = strip(path.read_bytes())
        except StripError as exc:
            result.refused[rel(path)] = exc.reason
            continue
        result.copies[rel(path)] = copy
        result.reports[rel(path)] = report
    return result


def original(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_corpus_files_are_stripped_or_refused_for_known_reasons(corpus: Copies) -> None:
    assert set(corpus.refused) == set(REFUSED)
    for name, reason in corpus.refused.items():
        assert REFUSED[name] in reason, name
    assert len(corpus.copies) == len(FILES) - len(REFUSED) == 84


def test_copies_keep_the_text_digest_and_are_fixed_points(corpus: Copies) -> None:
    for name, copy in corpus.copies.items():
        expected = corpus.reports[name].content_digest
        assert STRIPPER.content_digest(io.BytesIO(original(name))) == expected, name
        assert STRIPPER.content_digest(io.BytesIO(copy)) == expected, name
        again, _ = strip(copy)
        assert again == copy, name


def test_copies_name_no_one_the_original_names(corpus: Copies) -> None:
    named = 0
    for name, copy in corpus.copies.items():
        needles = secrets(original(name))
        named += bool(needles)
        assert leaked(copy, needles) == [], name
    assert named >= 70  # the check has something to find


def test_copies_are_laid_out_and_readable(corpus: Copies) -> None:
    for name, copy in corpus.copies.items():
        check_layout(original(name), copy)
        check_readable(original(name), copy)  # DOCX: the same paragraphs in python-docx
        kind = detect_media_type(original(name)[:SNIFF_BYTES])
        assert detect_media_type(copy[:SNIFF_BYTES]) == kind, name


def test_exiftool_finds_no_properties_in_copies(corpus: Copies, tmp_path: Path) -> None:
    copies = property_records(corpus.copies, tmp_path / "copies")
    assert {name: keys for name, r in copies.items() if (keys := property_leaks(r))} == {}
    originals = {name: original(name) for name in corpus.copies}
    before = property_records(originals, tmp_path / "originals")
    assert sum(bool(property_leaks(r)) for r in before.values()) >= 70


def test_exiftool_reads_copies_as_clean_packages(corpus: Copies, tmp_path: Path) -> None:
    paths = {}
    for index, (name, copy) in enumerate(corpus.copies.items()):
        paths[tmp_path / f"{index}{Path(name).suffix}"] = name
        (tmp_path / f"{index}{Path(name).suffix}").write_bytes(copy)
    found = {}
    for path, record in exiftool(paths).items():
        dates = {v for k, v in record.items() if k.endswith("ZIP:ZipModifyDate")}
        assert dates <= {"1980:01:01 00:00:00"}, paths[path]
        # With Perl's Archive::Zip ExifTool also reads the properties (XMP-* groups).
        others = [k for k in record if not re.match(r"^(SourceFile|ExifTool|System|File|ZIP):", k)]
        if keys := property_leaks({k: v for k, v in record.items() if k in others}):
            found[paths[path]] = keys
    assert found == {}


def test_copies_pass_the_extractors_sharing_gate(corpus: Copies, tmp_path: Path) -> None:
    """custody.metadata.copies releases a copy only if the extractors find nothing in it."""
    extract = pytest.importorskip("custody.metadata.extract")
    for index, (name, copy) in enumerate(corpus.copies.items()):
        path = tmp_path / f"{index}{Path(name).suffix}"
        path.write_bytes(copy)
        metadata = extract.extract_metadata(path, detect_media_type(copy[:SNIFF_BYTES]))
        assert (metadata.errors, metadata.sensitive.any) == ((), False), name


# --- mutated packages --------------------------------------------------------------------

SMALL_CORPUS = ("comment.docx", "revision.odt", "dangling_rels.xlsx", "revision_move.docx")
SEEDS = [
    sample.docx(sample.tracked(sample.TEXT), sample.paragraph("Second.")),
    sample.odt(sample.ANNOTATED, sample.CHANGES),
    sample.xlsx(),
    sample.pptx(),
] + [p.read_bytes() for p in FILES if p.name in SMALL_CORPUS or p.name == "OpenDoc.ods"]
# Limits small enough that the mutants can reach them.
FUZZ_STRIPPER = OfficeStripper(limits=PackageLimits(members=64, member_bytes=1 << 20))


@settings(max_examples=120, deadline=timedelta(seconds=3))
@given(index=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_byte_mutants_are_stripped_clean_or_refused(index: int, edits: list[Edit]) -> None:
    mutant = apply_edits(SEEDS[index], edits)
    stripped = check_copy(FUZZ_STRIPPER, mutant, [sample.SERIAL.encode()])
    event("stripped" if stripped else "refused")


@settings(max_examples=150, deadline=timedelta(seconds=3))
@given(index=st.integers(0, len(SEEDS) - 1), ops=OPS)
@example(index=2, ops=[("edit", 7, [(0, 0.5, b"\x00")])])  # a renamed <person> element
def test_member_mutants_are_stripped_clean_or_refused(index: int, ops: list[Any]) -> None:
    mutant = mutate(SEEDS[index], ops)
    if check_copy(FUZZ_STRIPPER, mutant, [sample.SERIAL.encode()]):
        check_readable(mutant, strip(mutant, FUZZ_STRIPPER)[0])
        event("stripped")
    else:
        event("refused")


def test_seeded_member_mutants_survive_often_enough_to_test(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    copies = {}
    for number in range(80):
        ops = seeded_ops(rng)
        mutant = mutate(SEEDS[number % len(SEEDS)], ops)
        if check_copy(FUZZ_STRIPPER, mutant, [sample.SERIAL.encode()]):
            copies[str(number)] = strip(mutant, FUZZ_STRIPPER)[0]
    assert len(copies) >= 20
    records = property_records(copies, tmp_path)
    assert {name: keys for name, r in records.items() if (keys := property_leaks(r))} == {}
