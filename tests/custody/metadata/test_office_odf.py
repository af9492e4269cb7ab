"""Tests for custody.metadata.office_odf: the rules for each XML part of an ODF package."""

from __future__ import annotations

import base64

import pytest

from custody.metadata.base import StripError
from custody.metadata.office import OfficeStripper
from tests.custody.metadata import office_samples as sample
from tests.custody.metadata.office_checks import check_copy, members
from tests.custody.metadata.strip_checks import strip_bytes

STRIPPER = OfficeStripper()
_FOREIGN = 'xmlns:x="urn:example:people"'


def _meta(inside_meta: str, *, around: str = "", root_attributes: str = "") -> bytes:
    return (
        f"<office:document-meta {_FOREIGN} {sample.ODF_NS}{root_attributes}>{around}"
        f"<office:meta>{inside_meta}</office:meta></office:document-meta>"
    ).encode()


def _copied_meta(meta: bytes) -> str:
    original = sample.odt(parts={"meta.xml": meta})
    assert check_copy(STRIPPER, original, [sample.NAME.encode()])
    copy, _ = strip_bytes(STRIPPER, original)
    return members(copy)["meta.xml"].decode()


_STATISTIC = '<meta:document-statistic meta:page-count="1" meta:word-count="7"/>'


@pytest.mark.parametrize(
    "meta",
    [
        # Beside office:meta, under the root.
        _meta(_STATISTIC, around=f"<x:witness>{sample.NAME}</x:witness>"),
        # office:meta of another namespace: none of its children are statistics.
        _meta(_STATISTIC).replace(b"office:meta>", b"x:meta>"),
        # Inside the statistics element, as a child or as an attribute of any namespace.
        _meta(f"<meta:document-statistic><x:by>{sample.NAME}</x:by></meta:document-statistic>"),
        _meta(f'<meta:document-statistic meta:page-count="1" x:by="{sample.NAME}"/>'),
        _meta(f'<meta:document-statistic meta:author="{sample.NAME}"/>'),
        _meta(_STATISTIC, root_attributes=f' x:by="{sample.NAME}"'),
        _meta(_STATISTIC).replace(b"<office:meta>", f'<office:meta x:by="{sample.NAME}">'.encode()),
        # Character data where the schema has none.
        _meta(f"{sample.NAME}{_STATISTIC}"),
        _meta(_STATISTIC, around=sample.NAME),
    ],
)
def test_meta_keeps_only_the_statistics_it_knows(meta: bytes) -> None:
    kept = _copied_meta(meta)
    assert sample.NAME not in kept
    assert "x:" not in kept.replace(_FOREIGN, "")


def test_meta_keeps_the_counts_and_the_version() -> None:
    kept = _copied_meta(_meta(_STATISTIC))
    end = f'office:version="1.3"><office:meta>{_STATISTIC}</office:meta></office:document-meta>'
    assert kept.endswith(end)


def test_meta_of_another_vocabulary_is_refused() -> None:
    meta = _meta(_STATISTIC).replace(b"office:document-meta", b"x:document-meta")
    with pytest.raises(StripError, match=r"meta\.xml: the root element"):
        strip_bytes(STRIPPER, sample.odt(parts={"meta.xml": meta}))


def test_a_field_that_shows_a_user_defined_property_is_refused() -> None:
    field = (
        f'<text:p><text:user-defined text:name="Client">{sample.NAME}</text:user-defined></text:p>'
    )
    with pytest.raises(StripError, match="text:user-defined field prints a document property"):
        strip_bytes(STRIPPER, sample.odt(field))


def test_comment_initials_go_like_the_comment_author() -> None:
    loext = "urn:org:documentfoundation:names:experimental:office:xmlns:loext:1.0"
    annotation = sample.ANNOTATED.replace(
        "<meta:creator-initials>JW</meta:creator-initials>",
        f'<loext:sender-initials xmlns:loext="{loext}">JWit</loext:sender-initials>',
    )
    original = sample.odt(annotation)
    assert check_copy(STRIPPER, original, [b"JWit"])
    copy, report = strip_bytes(STRIPPER, original)
    assert "sender-initials" not in members(copy)["content.xml"].decode()
    assert "content.xml loext:sender-initials" in report.removed


@pytest.mark.parametrize("part", ["content.xml", "styles.xml"])
def test_an_image_embedded_in_the_xml_is_refused(part: str) -> None:
    image = (
        "<draw:frame><draw:image><office:binary-data>"
        f"{base64.b64encode(sample.photo()).decode()}</office:binary-data></draw:image></draw:frame>"
    )
    original = sample.odt(image)
    if part == "styles.xml":
        styles = f"<office:document-styles {sample.ODF_NS}><office:styles>{image}</office:styles>"
        original = sample.odt(parts={part: f"{styles}</office:document-styles>".encode()})
    with pytest.raises(StripError, match=f"{part}: an office:binary-data"):
        strip_bytes(STRIPPER, original)


@pytest.mark.parametrize(
    "field",
    [
        "<text:file-name>/home/jwitness/statement.odt</text:file-name>",  # "full" by default
        '<text:file-name text:display="full">/home/jwitness/statement.odt</text:file-name>',
        '<text:file-name text:display="path">/home/jwitness/</text:file-name>',
        "<text:template-name>/home/jwitness/.config/templates/letter.ott</text:template-name>",
        '<text:template-name text:display="path">C:\\Users\\jwitness\\</text:template-name>',
    ],
)
def test_a_field_that_shows_the_file_path_is_refused(field: str) -> None:
    with pytest.raises(StripError, match="field prints the file's path"):
        strip_bytes(STRIPPER, sample.odt(f"<text:p>{field}</text:p>"))


@pytest.mark.parametrize(
    "field",
    [
        '<text:file-name text:display="name-and-extension">statement.odt</text:file-name>',
        '<text:template-name text:display="title">Letter</text:template-name>',
    ],
)
def test_a_field_that_shows_the_file_name_alone_is_kept(field: str) -> None:
    copy, _ = strip_bytes(STRIPPER, sample.odt(f"<text:p>{field}</text:p>"))
    assert field in members(copy)["content.xml"].decode()


_ODG = "application/vnd.oasis.opendocument.graphics"


def test_a_drawing_keeps_its_text_and_loses_its_comment_authors() -> None:
    """ODG (LibreOffice Draw): pages of shapes with text, and comments on a page."""
    content = (
        f"<office:document-content {sample.ODF_NS} "
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0">'
        '<office:body><office:drawing><draw:page draw:name="Site plan">'
        '<draw:frame svg:x="1cm" svg:y="1cm"><draw:text-box><text:p>Gate 3, north wall'
        "</text:p></draw:text-box></draw:frame>"
        f"<officeooo:annotation><dc:creator>{sample.NAME}</dc:creator>"
        "<dc:date>2026-11-28T09:31:00</dc:date><text:p>Measured on site</text:p>"
        "</officeooo:annotation></draw:page></office:drawing></office:body>"
        "</office:document-content>"
    ).encode()
    manifest = members(sample.odt())["META-INF/manifest.xml"].replace(
        sample.ODF_TEXT.encode(), _ODG.encode()
    )
    original = sample.odt(
        parts={"mimetype": _ODG.encode(), "content.xml": content, "META-INF/manifest.xml": manifest}
    )
    assert check_copy(STRIPPER, original, [sample.NAME.encode(), b"2026-11-28T09:31"])
    copy, report = strip_bytes(STRIPPER, original)
    kept = members(copy)["content.xml"].decode()
    assert "Gate 3, north wall" in kept
    assert "Measured on site" in kept
    assert sample.NAME not in kept
    assert members(copy)["mimetype"] == _ODG.encode()
    assert report.content_kind == "office-document-text"


def test_a_formula_is_still_refused() -> None:
    formula = "application/vnd.oasis.opendocument.formula"
    with pytest.raises(StripError, match="drawing"):
        strip_bytes(STRIPPER, sample.odt(parts={"mimetype": formula.encode()}))
