"""Office Open XML (ECMA-376) metadata: document properties, comment and revision authors."""

from __future__ import annotations

import re
from functools import partial
from typing import BinaryIO

from custody.metadata.extractors.collector import Collector
from custody.metadata.extractors.package import Package, add_members, qname, read_media

_SPREADSHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PREFIXES = {
    "http://schemas.openxmlformats.org/package/2006/metadata/core-properties": "cp",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main": "w",
    "http://schemas.microsoft.com/office/word/2010/wordml": "w14",
    "http://schemas.microsoft.com/office/word/2012/wordml": "w15",
    "http://schemas.microsoft.com/office/word/2018/wordml/cex": "w16cex",
    "http://schemas.openxmlformats.org/presentationml/2006/main": "p",
    "http://schemas.microsoft.com/office/powerpoint/2018/8/main": "p188",
    _SPREADSHEET: "x",
    "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments": "x18tc",
}
# ECMA-376 Part 1: comments (§17.13.4.2), revisions (§17.13.5: w:ins, w:del, w:rPrChange...),
# people (MS-DOCX §2.6.1), PowerPoint comment authors (§19.4.1) and Excel's persons: the
# attributes that name a person, wherever they appear.
_PERSON_ATTRIBUTES = ("author", "initials", "userId", "providerId", "displayName")
_AUTHOR_ELEMENTS = frozenset({f"{{{_SPREADSHEET}}}author"})  # §18.7.2, in xl/comments*.xml
_RSID = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}rsid"
_TAGS = _AUTHOR_ELEMENTS | {_RSID}
_NAMED_BY_NAME = re.compile(r"^ppt/(commentAuthors|authors)\.xml$")  # there, "name" is a person
_TABLES = re.compile(r"^xl/tables/[^/]+\.xml$")
_PRESENT = re.compile(r"^docProps/thumbnail\.|/embeddings/")
_MEDIA = re.compile(r"^(word|ppt|xl)/media/[^/]+\.(jpe?g|png|tiff?|webp|hei[cf])$", re.IGNORECASE)
_SKIP = re.compile(r"^docProps/|^\[Content_Types\]\.xml$|/media/")


def extract_ooxml(fh: BinaryIO, out: Collector) -> None:
    """Core ("OOXML:core/dc:creator"), app ("OOXML:app/Company"), custom and people fields."""
    package = Package(fh, out.limits)
    if len(package.names) > out.limits.zip_max_members:  # the directory lied about its size
        out.error("ooxml", f"{len(package.names)} members: not inspected")
        return
    add_members(package, out, "OOXML", _PRESENT)
    read_media(package, out, "OOXML", _MEDIA)
    for part, section in (("docProps/core.xml", _core), ("docProps/app.xml", _app)):
        if part in package.names:
            out.guard("ooxml", partial(section, package, part, out))
    if "docProps/custom.xml" in package.names:
        out.guard("ooxml", partial(_custom, package, out))
    for name in package.names:
        if name.endswith(".xml") and not _SKIP.search(name):
            out.guard("ooxml", partial(_people, package, name, out))


def _core(package: Package, part: str, out: Collector) -> None:
    """ECMA-376 Part 2 §11: core properties (creator, lastModifiedBy, created, modified...)."""
    for element in package.parse(part):
        if element.text and element.text.strip():
            out.add(f"OOXML:core/{qname(element.tag, _PREFIXES)}", element.text.strip())


def _app(package: Package, part: str, out: Collector) -> None:
    """ECMA-376 Part 1 §22.2: extended properties (Application, Company, Manager...)."""
    for element in package.parse(part):
        if len(element) == 0 and element.text and element.text.strip():
            out.add(f"OOXML:app/{element.tag.rpartition('}')[2]}", element.text.strip())


def _custom(package: Package, out: Collector) -> None:
    """ECMA-376 Part 1 §22.3: custom properties, each a name and one typed value."""
    for prop in package.parse("docProps/custom.xml"):
        name = prop.get("name", "")
        for value in prop:
            out.add(f"OOXML:custom/{name}", (value.text or "").strip())


def _people(package: Package, part: str, out: Collector) -> None:
    """People named in a part: authors of comments and revisions, persons, comment authors."""
    rsids = 0
    person_attributes = _PERSON_ATTRIBUTES + (("name",) if _NAMED_BY_NAME.match(part) else ())
    if _TABLES.match(part):  # §18.5.1.2: a table's displayName is what formulas call it
        person_attributes = tuple(a for a in person_attributes if a != "displayName")
    for tag, attributes, text in package.events(part, _TAGS, person_attributes):
        for attribute, value in attributes.items():
            if attribute.rpartition("}")[2] in person_attributes and value:
                out.add(f"OOXML:{part}@{qname(attribute, _PREFIXES)}", value)
        if tag in _AUTHOR_ELEMENTS and text:  # Excel's legacy comments list their authors
            out.add(f"OOXML:{part}/x:author", text)
        rsids += tag == _RSID
    if rsids:  # §17.15.1.72: revision save IDs tie the file to its editing sessions
        out.add(f"OOXML:{part}/w:rsid", f"{rsids} revision save IDs", literal=False)
