"""Tests for custody.metadata.office_ooxml_rules: the rules for the XML parts of OOXML."""

from __future__ import annotations

import base64

import pytest

from custody.metadata.base import StripError
from custody.metadata.office import OfficeStripper
from tests.custody.metadata import office_samples as sample
from tests.custody.metadata.office_checks import check_copy, members
from tests.custody.metadata.strip_checks import strip_bytes

STRIPPER = OfficeStripper()


def _complex(instruction: str) -> str:
    """A complex field (begin, instruction, separate, result, end), its instruction in two runs."""
    half = len(instruction) // 2
    return (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f"<w:r><w:instrText>{instruction[:half]}</w:instrText></w:r>"
        f"<w:r><w:instrText>{instruction[half:]}</w:instrText></w:r>"
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        r"<w:r><w:t>C:\Users\jwitness\statement.docx</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


@pytest.mark.parametrize(
    "field",
    [
        '<w:fldSimple w:instr=" FILENAME \\p "/>',
        '<w:fldSimple w:instr=" FILENAME \\* Lower \\p \\* MERGEFORMAT "/>',
        '<w:fldSimple w:instr="TEMPLATE \\P"/>',
        _complex(" FILENAME  \\p "),
        _complex(" TEMPLATE \\p \\* MERGEFORMAT "),
    ],
)
def test_a_field_that_prints_the_file_path_is_refused(field: str) -> None:
    with pytest.raises(StripError, match="field prints the file's path"):
        strip_bytes(STRIPPER, sample.docx(f"<w:p>{field}</w:p>"))


@pytest.mark.parametrize(
    "field",
    ['<w:fldSimple w:instr=" FILENAME "/>', '<w:fldSimple w:instr=" TEMPLATE \\* Upper "/>'],
)
def test_a_field_that_prints_the_file_name_alone_is_kept(field: str) -> None:
    copy, _ = strip_bytes(STRIPPER, sample.docx(f"<w:p>{field}</w:p>"))
    assert field in members(copy)["word/document.xml"].decode()


@pytest.mark.parametrize(
    "binding",
    [
        '<w:dataBinding w:xpath="/ns0:coreProperties[1]/ns1:creator[1]" w:storeItemID="{6C3C}"/>',
        '<w15:dataBinding xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml" '
        'w15:xpath="/ns0:coreProperties[1]/ns1:creator[1]" w15:storeItemID="{6C3C}"/>',
    ],
)
def test_a_content_control_bound_to_custom_xml_is_refused(binding: str) -> None:
    control = (
        f"<w:sdt><w:sdtPr>{binding}</w:sdtPr><w:sdtContent><w:r><w:t>{sample.NAME}</w:t></w:r>"
        "</w:sdtContent></w:sdt>"
    )
    with pytest.raises(StripError, match="a content control bound to"):
        strip_bytes(STRIPPER, sample.docx(f"<w:p>{control}</w:p>"))


def test_vml_shapes_lose_their_drawingml_copy() -> None:
    drawing = sample.zip_package({"drawing.xml": f"<a:author>{sample.NAME}</a:author>".encode()})
    gfxdata = base64.b64encode(drawing).decode()
    shape = (
        '<v:shape xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
        f'office:office" id="box" o:gfxdata="{gfxdata}" style="width:20pt"/>'
    )
    original = sample.docx(f"<w:p><w:r><w:pict>{shape}</w:pict></w:r></w:p>")
    assert check_copy(STRIPPER, original, [gfxdata[:40].encode()])
    copy, report = strip_bytes(STRIPPER, original)
    assert (
        shape.replace(f' o:gfxdata="{gfxdata}"', "") in members(copy)["word/document.xml"].decode()
    )
    assert "word/document.xml @o:gfxdata" in report.removed


def test_modern_comment_replies_lose_their_times_like_the_comment() -> None:
    modern = "http://schemas.microsoft.com/office/powerpoint/2018/8/main"
    comments = (
        f'<p188:cmLst xmlns:p188="{modern}"><p188:cm id="{{C1}}" authorId="{{A1}}" '
        'created="2026-11-28T09:30:00.000"><p188:replyLst><p188:reply id="{R1}" '
        'authorId="{A2}" created="2026-11-28T09:41:00.000"><p188:txBody/></p188:reply>'
        "</p188:replyLst><p188:txBody/></p188:cm></p188:cmLst>"
    )
    name = "ppt/comments/modernComment_100_1A2B3C4D.xml"
    original = sample.zip_package({**members(sample.pptx()), name: comments.encode()})
    assert check_copy(STRIPPER, original, [b"2026-11-28"])
    kept = members(strip_bytes(STRIPPER, original)[0])[name].decode()
    assert "created" not in kept
    assert '<p188:cm id="{C1}" authorId="{A1}">' in kept
    assert '<p188:reply id="{R1}" authorId="{A2}">' in kept
