"""Checks for office sharing copies, independent of the stripper: ZIP layout, people, text."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, tostring

import docx
from defusedxml import ElementTree

from custody.metadata.base import StripError, Stripper
from tests.custody.metadata.strip_checks import exiftool, fixed_point, strip_bytes

OFFICE_SUFFIXES = (".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".odg")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
MIN_NEEDLE = 4  # as custody.metadata.copies: shorter values occur by chance
# Where originals name people, organisations, software and times: every leaf of the property
# parts (OPC core, extended and custom properties, ODF meta.xml), comment and change
# authors and dates, and the attributes of the elements that describe people.
_PROPERTY_PARTS = ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml", "meta.xml")
_DC = "{http://purl.org/dc/elements/1.1/}"
_PERSON_ELEMENTS = {
    f"{_DC}creator",
    f"{_DC}date",
    "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}creator-initials",
    "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}author",
}
_APP_FIELDS = {"Company", "Manager", "Template", "HyperlinkBase", "Application", "AppVersion"}
_PERSON_ATTRIBUTES = {"author", "initials", "userId", "providerId", "userName"}
_PEOPLE = {"person", "author", "cmAuthor", "presenceInfo"}  # their names and IDs too
_TEXT_PARTS = re.compile(
    r"^(word/(document|header\d+|footer\d+|footnotes|endnotes|comments)\.xml"
    r"|xl/(sharedStrings|worksheets/sheet\d+)\.xml|ppt/slides/slide\d+\.xml"
    r"|content\.xml|styles\.xml)$"
)
# Property-part tags ExifTool may show in a copy: counts and flags (ExifTool reads a bare
# core.xml, app.xml or meta.xml as XML and names tags after the elements).
_ALLOWED_PROPERTY_TAGS = re.compile(
    r"^(Properties(Xmlns|Pages|Words|Characters|CharactersWithSpaces|Lines|Paragraphs|Slides"
    r"|Notes|HiddenSlides|MMClips|PresentationFormat|ScaleCrop|DocSecurity|LinksUpToDate"
    r"|SharedDoc|HyperlinksChanged)|Document-statistic.*)$"
)
_ODF_SPEC = "http://docs.oasis-open.org/office/"  # meta.xml's GRDDL transformation
_FILE_GROUPS = re.compile(r"^(SourceFile|ExifTool|System|File)$")


def members(data: bytes, *, lenient: bool = False) -> dict[str, bytes]:
    """Each member, inflated; `lenient` skips damaged ones (an original's dropped members)."""
    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        for info in package.infolist():
            try:
                found[info.filename] = package.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError):
                if not lenient:
                    raise
    return found


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parts(data: bytes) -> Iterator[tuple[str, Element | None, bytes]]:
    """Each XML member: its tree, or None where it does not parse."""
    for name, content in members(data, lenient=True).items():
        if name.endswith((".xml", ".rels", ".vml")) and content:
            try:
                root = ElementTree.fromstring(content, forbid_dtd=True)
            except Exception:
                root = None
            yield name, root, content


def secrets(data: bytes) -> set[bytes]:
    """Values the original holds only in metadata places (read with ElementTree).

    A value that also occurs elsewhere in the XML (the text, a style called "Normal", an
    unknown attribute the stripper keeps) is content, not a secret.
    """
    found: set[str] = set()
    residual = []
    for name, root, content in _parts(data):
        if root is None:
            residual.append(content.decode("utf-8", "replace"))
            continue
        for element in root.iter():
            found.update(_blank_people(name, element))
        residual.append(tostring(root, encoding="unicode"))
    rest = "".join(residual)
    return {v.encode() for v in found if len(v) >= MIN_NEEDLE and v not in rest}


def _blank_people(part: str, element: Element) -> list[str]:
    """The metadata values of `element`, blanked in place."""
    local = _local(element.tag)
    values = []
    leaf = len(element) == 0 and element.text
    properties = part in _PROPERTY_PARTS and part != "docProps/app.xml"
    metadata = properties or local in _APP_FIELDS or element.tag in _PERSON_ELEMENTS
    if leaf and metadata and local != "document-statistic":
        values.append(str(element.text).strip())
        element.text = ""
    for attribute, value in element.attrib.items():
        name = _local(attribute)
        if name in _PERSON_ATTRIBUTES or (local in _PEOPLE and name != "id"):
            values.append(value.strip())
            element.set(attribute, "")
    return values


def document_text(data: bytes) -> str:
    """The character data of the text parts, read with ElementTree (not the stripper)."""
    return "".join(
        "".join(root.itertext())
        for name, root, _ in _parts(data)
        if root is not None and _TEXT_PARTS.match(name)
    )


def leaked(copy: bytes, needles: Iterable[bytes]) -> list[str]:
    """Needles found in any member of the copy, inflated, raw or as XML escapes them."""
    contents = list(members(copy).values())
    found = []
    for needle in needles:
        escaped = needle.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b'"', b"&quot;")
        if any(needle in c or escaped in c for c in contents):
            found.append(needle.decode(errors="replace"))
    return found


def check_layout(original: bytes, copy: bytes) -> None:
    """One fixed time, no extras or comments, the original order (ODF: mimetype first)."""
    with zipfile.ZipFile(io.BytesIO(copy)) as package:
        assert package.comment == b""
        infos = package.infolist()
        for info in infos:
            assert (info.date_time, info.extra, info.comment) == (FIXED_TIME, b"", b"")
        names = [info.filename for info in infos]
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        before = [n for n in source.namelist() if n in names]
    if "mimetype" in names:
        assert infos[0].filename == "mimetype"
        assert infos[0].compress_type == zipfile.ZIP_STORED
        assert copy[30:38] == b"mimetype"  # the local header: no extra field (ODF §3.3)
        before.remove("mimetype")
        names.remove("mimetype")
    assert names == before


def check_readable(original: bytes, copy: bytes) -> None:
    """Every XML member parses; DOCX copies open in python-docx with the same paragraphs."""
    for name, content in members(copy).items():
        if name.endswith((".xml", ".rels")) and content:
            ElementTree.fromstring(content, forbid_dtd=True)
    if "word/document.xml" in members(copy):
        try:
            expected = paragraphs(original)
        except Exception:
            expected = None
        if expected is not None:
            assert paragraphs(copy) == expected


def paragraphs(data: bytes) -> list[str]:
    document = docx.Document(io.BytesIO(data))
    texts = [p.text for p in document.paragraphs]
    texts += [
        p.text for t in document.tables for r in t.rows for c in r.cells for p in c.paragraphs
    ]
    for section in document.sections:
        texts += [p.text for p in section.header.paragraphs + section.footer.paragraphs]
    return texts


def check_copy(stripper: Stripper, original: bytes, extra: Iterable[bytes] = ()) -> bool:
    """Strip `original`: False if refused, else every check on the copy must hold.

    The copy may name no one the original names in metadata places, nor any of `extra`.
    """
    try:
        copy, report = strip_bytes(stripper, original)
    except StripError:
        return False
    needles = secrets(original) | set(extra)
    digest = stripper.content_digest(io.BytesIO(original))
    assert digest == report.content_digest == stripper.content_digest(io.BytesIO(copy))
    fixed_point(stripper, copy)
    check_layout(original, copy)
    assert leaked(copy, needles) == []
    return True


def property_records(copies: dict[str, bytes], folder: Path) -> dict[str, dict[str, Any]]:
    """ExifTool's reading of each copy's property parts (core, app, custom, meta.xml).

    ExifTool reads these inside a package only with Perl's Archive::Zip; read bare, as XML,
    they give the same tags on any installation.
    """
    folder.mkdir(exist_ok=True)
    paths: dict[Path, str] = {}
    for key, copy in copies.items():
        for name, content in members(copy).items():
            if name in ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml", "meta.xml"):
                path = folder / f"{len(paths)}.xml"
                path.write_bytes(content)
                paths[path] = key
    records: dict[str, dict[str, Any]] = {key: {} for key in copies}
    for path, record in exiftool(paths).items():
        records[paths[path]].update(record)
    return records


def property_leaks(record: dict[str, Any]) -> list[str]:
    found = []
    for key, value in record.items():
        group, _, name = key.rpartition(":")
        if _FILE_GROUPS.match(group or key) or _ALLOWED_PROPERTY_TAGS.match(name):
            continue
        if (name, value) == ("CoreProperties", ""):  # the empty core properties element
            continue
        if name == "Transformation" and str(value).startswith(_ODF_SPEC):  # GRDDL
            continue
        found.append(key)
    return found
