"""The sensitive values of a PDF, for searching copies (ISO 32000-2 §14.3, §12.8; ISO 16684-1)."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf
from pikepdf import Dictionary, Stream, String

from custody.metadata.pdf_graph import SIG, WIDGET, Graph, ObjGen, dictionaries, is_annotation

# §14.3.3 Table 349: Info entries that describe the document rather than name anyone; a
# document may show these in its own text. /Author, the dates, and custom entries whose key
# suggests a person, place, date or identifier are identities.
_INFO_DESCRIPTIVE = frozenset({"/Title", "/Subject", "/Keywords", "/Creator", "/Producer"})
_IDENTITY_KEY = re.compile(
    r"author|owner|company|manager|user|name|mail|id$|date|modified|site|person|contact|by$"
    r"|editor|phone|address|location|city|country|gps|serial|machine|host|computer|path",
    re.IGNORECASE,
)
# XMP properties (local names, lowercased) whose values are searched for in copies.
# fmt: off
_XMP_IDENTITY = frozenset({
    "creator", "author", "authors", "rights", "owner", "ownername", "cameraownername",
    "serialnumber", "bodyserialnumber", "lensserialnumber", "internalserialnumber",
    "imageuniqueid", "documentid", "instanceid", "originaldocumentid", "city", "state",
    "country", "location", "sublocation", "captionwriter", "authorsposition", "credit",
    "company", "manager", "publisher", "contact", "gpslatitude", "gpslongitude", "make",
    "model", "webstatement", "createdate", "modifydate", "metadatadate", "datecreated", "when",
})
_XMP_DESCRIPTIVE = frozenset({
    "title", "description", "subject", "keywords", "creatortool", "producer", "softwareagent",
    "headline", "comments",
})
# fmt: on
# Values that are vocabulary of PDF, XMP or fonts, so a copy may hold them by chance.
_VOCABULARY = frozenset({"true", "false", "yes", "no", "none", "null", "unknown"})
_OPEN_TAG = re.compile(r"<(?P<prefix>[\w.-]+:)?(?P<name>[\w.-]+)(?P<attrs>[^<>]*)>")
_ATTRIBUTE = re.compile(
    r"(?:[\w.-]+:)?(?P<name>[\w.-]+)\s*=\s*(?P<q>[\"'])(?P<value>.*?)(?P=q)", re.DOTALL
)
_ELEMENT_TEXT = re.compile(r">([^<>]+)<")
_SIG_VALUES = ("/Name", "/Location", "/Reason", "/ContactInfo")  # §12.8.1 Table 255
# XML 1.0 Appendix F: byte order marks (UTF-32 first: its little-endian mark starts as
# UTF-16's), then where the zero bytes of an ASCII first character fall.
_MARKS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_ZEROS: dict[tuple[bool, ...], str] = {
    (True, True, True, False): "utf-32-be",
    (False, True, True, True): "utf-32-le",
    (True, False, True, False): "utf-16-be",
    (False, True, False, True): "utf-16-le",
}
_MIN_CHARS = 3  # shorter values cannot be told apart from chance matches
_SHORT_CHARS = 4  # below this, search only PDF strings: in binary data it would match by chance


@dataclass(frozen=True, slots=True)
class Needle:
    """One sensitive value of the original, in every encoding a PDF writer may store it in."""

    label: str  # where it was, e.g. "Info /Author" (never the value)
    identity: bool  # a name, identifier or date: a leak anywhere but in page content streams
    forms: tuple[bytes, ...]
    short: bool  # under 4 characters: searched for in PDF strings only, if at all


def needle(label: str, value: str, *, identity: bool, raw: bytes = b"") -> Needle | None:
    text = value.replace("\x00", "").strip()
    if len(text) < _MIN_CHARS or text.lower() in _VOCABULARY or not any(map(str.isalpha, text)):
        return None  # numbers alone (counts, versions, flags) would match by chance
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    forms = {raw, text.encode(), escaped.encode(), text.encode("utf-16-be")}
    forms.add(text.encode("utf-16-le"))
    for codec in ("pdfdoc", "latin-1"):  # §7.9.2.2: PDFDocEncoding; Latin-1 from sloppy writers
        with contextlib.suppress(UnicodeEncodeError):  # a value outside the codec's repertoire
            forms.add(text.encode(codec))
    forms.discard(b"")
    return Needle(label, identity, tuple(sorted(forms)), len(text) < _SHORT_CHARS)


def collect(pdf: pikepdf.Pdf, walked: Graph | None = None) -> list[Needle]:
    """Info values, XMP values of every /Metadata stream, annotation authors, signer names."""
    found: list[Needle | None] = []
    info = pdf.trailer.get("/Info")
    if isinstance(info, Dictionary):
        for key in info.keys():  # noqa: SIM118
            value = info.get(key)
            if isinstance(value, String):
                identity = key == "/Author" or (
                    key not in _INFO_DESCRIPTIVE and bool(_IDENTITY_KEY.search(key))
                )
                found.append(needle(f"Info {key}", str(value), identity=identity, raw=bytes(value)))
    metadata: set[ObjGen] = set()
    for obj in dictionaries(pdf, walked):
        keys = obj.keys()
        stream = obj.get("/Metadata") if "/Metadata" in keys else None
        if isinstance(stream, Stream) and stream.objgen not in metadata:
            metadata.add(stream.objgen)
            found.extend(_xmp(bytes(stream.read_bytes())))
        found.extend(_dictionary_values(obj, keys))
    return [item for item in found if item is not None]


def _dictionary_values(obj: Dictionary | Stream, keys: set[str]) -> Iterator[Needle | None]:
    if "/T" in keys and is_annotation(obj, keys) and marks_author(obj):
        author = obj.get("/T")
        if isinstance(author, String):
            yield needle("annotation author", str(author), identity=True, raw=bytes(author))
    # §12.8.1 signature dictionary
    if "/ByteRange" in keys or ("/Type" in keys and obj.get("/Type") == SIG):
        for key in _SIG_VALUES:
            value = obj.get(key)
            if isinstance(value, String):
                yield needle(f"signature {key}", str(value), identity=True, raw=bytes(value))


def marks_author(annotation: Dictionary | Stream) -> bool:
    """/T is the author of a markup annotation (§12.5.6.2), but a widget's field name (§12.7.4)."""
    return annotation.get("/Subtype") != WIDGET and "/FT" not in annotation


def _xmp(data: bytes) -> Iterator[Needle | None]:
    """Values of the listed properties, element or attribute form, read as tagged text.

    Not an RDF parse: real packets break XML namespace rules (iText 2.1.7 writes an unbound
    xmp: prefix) and a value must be found even in a packet no parser accepts.
    """
    text = _xml_text(data)
    for tag in _OPEN_TAG.finditer(text):
        prefix, name, attributes = tag.group("prefix"), tag.group("name"), tag.group("attrs")
        for attribute in _ATTRIBUTE.finditer(attributes):
            yield _xmp_needle(attribute.group("name"), attribute.group("value"))
        if prefix == "rdf:" or name.lower() not in _XMP_IDENTITY | _XMP_DESCRIPTIVE:
            continue  # rdf:Description is a container, not dc:description
        if attributes.endswith("/"):
            continue
        end = text.find(f"</{prefix or ''}{name}", tag.end())
        inner = text[tag.end() : end if end >= 0 else tag.end()]
        for value in _ELEMENT_TEXT.finditer(f">{inner}<"):
            yield _xmp_needle(name, value.group(1))


def _xmp_needle(name: str, value: str) -> Needle | None:
    local = name.lower()
    if local not in _XMP_IDENTITY and local not in _XMP_DESCRIPTIVE:
        return None
    return needle(f"XMP {local}", html.unescape(value), identity=local in _XMP_IDENTITY)


def _xml_text(data: bytes) -> str:
    encoding = _unicode_encoding(data)
    if encoding is not None:
        return data.decode(encoding, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # every byte stays a character, so values still match


def _unicode_encoding(data: bytes) -> str | None:
    """UTF-16 or UTF-32 (and their byte order), as XML 1.0 Appendix F tells them apart by a
    byte order mark or by the zero bytes around the first character, which is ASCII ("<" or
    white space); None for anything else. XMP packets may be in any of them (ISO 16684-1
    §7.3), and their byte order mark sits in the xpacket header, not in front."""
    for mark, encoding in _MARKS:
        if data.startswith(mark):
            return encoding
    return _ZEROS.get(tuple(byte == 0 for byte in data[:4]))
