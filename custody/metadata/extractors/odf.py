"""OpenDocument (ISO/IEC 26300, ODF 1.3) metadata: meta.xml, annotation and change authors."""

from __future__ import annotations

import re
from functools import partial
from typing import BinaryIO

from custody.metadata.extractors.collector import Collector
from custody.metadata.extractors.package import Package, add_members, qname, read_media

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
_PREFIXES = {
    _OFFICE: "office",
    _META: "meta",
    "urn:oasis:names:tc:opendocument:xmlns:text:1.0": "text",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://www.w3.org/1999/xlink": "xlink",
}
# ODF 1.3 Part 3: authors and dates of annotations (§14.1), tracked changes (§5.5.7), and
# the text fields that print the author or sender into the document (§7.3.7, §7.3.6).
_PEOPLE = (
    "dc:creator",
    "dc:date",
    "meta:creator-initials",
    "text:author-name",
    "text:author-initials",
    "text:sender-firstname",
    "text:sender-lastname",
    "text:sender-initials",
    "text:sender-email",
    "text:sender-phone-private",
    "text:sender-phone-work",
)
_URIS = {prefix: uri for uri, prefix in _PREFIXES.items()}
_PEOPLE_ELEMENTS = frozenset(
    f"{{{_URIS[prefix]}}}{local}" for prefix, _, local in (name.partition(":") for name in _PEOPLE)
)
_PRESENT = re.compile(r"^Thumbnails/|^Object \d+/|^ObjectReplacements/")
_MEDIA = re.compile(r"^Pictures/[^/]+\.(jpe?g|png|tiff?|webp|hei[cf])$", re.IGNORECASE)
_CONTENT = ("content.xml", "styles.xml")


def extract_odf(fh: BinaryIO, out: Collector) -> None:
    """meta.xml ("ODF:meta/meta:initial-creator") and people in content.xml and styles.xml."""
    package = Package(fh, out.limits)
    if len(package.names) > out.limits.zip_max_members:  # the directory lied about its size
        out.error("odf", f"{len(package.names)} members: not inspected")
        return
    add_members(package, out, "ODF", _PRESENT)
    read_media(package, out, "ODF", _MEDIA)
    if "meta.xml" in package.names:
        out.guard("odf", partial(_meta, package, out))
    for part in _CONTENT:
        if part in package.names:
            out.guard("odf", partial(_people, package, part, out))


def _meta(package: Package, out: Collector) -> None:
    """§3.1 office:meta: generator, creators, dates, statistics, user-defined fields."""
    for meta in package.parse("meta.xml").iter(f"{{{_OFFICE}}}meta"):
        for element in meta:
            tag = qname(element.tag, _PREFIXES)
            if tag == "meta:user-defined":  # §4.3.2.26: a field named by its meta:name
                out.add(f"ODF:meta/{tag}/{element.get(f'{{{_META}}}name', '')}", element.text)
                continue
            if element.text and element.text.strip():
                out.add(f"ODF:meta/{tag}", element.text.strip())
            if tag != "meta:document-statistic":  # counts of pages, words...: not sensitive
                for attribute, value in element.attrib.items():
                    out.add(f"ODF:meta/{tag}@{qname(attribute, _PREFIXES)}", value)


def _people(package: Package, part: str, out: Collector) -> None:
    for tag, _attributes, text in package.events(part, _PEOPLE_ELEMENTS):
        if tag in _PEOPLE_ELEMENTS and text.strip():
            out.add(f"ODF:{part}/{qname(tag, _PREFIXES)}", text.strip())
