"""The search of a PDF copy (ISO 32000-2 §7.3, §7.4) for the original's sensitive values."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TypeGuard

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream, String

from custody.metadata.binary import unique
from custody.metadata.pdf_graph import IMAGE, Container, Graph, ObjGen, graph, name_bytes
from custody.metadata.pdf_images import stream_bytes
from custody.metadata.pdf_needles import Needle

_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")  # §9.9 Table 126
# Between the strings of one object: no needle form holds four NUL bytes in a row (NULs are
# removed from values, and UTF-16 of other characters has at most two in a row).
_SEPARATOR = b"\x00\x00\x00\x00"
_IN_SAMPLES = 8  # bytes: shorter forms would match image samples by chance
# §7.9.4: a whole string that is a date. Every date a copy should hold was removed with its
# entry, so one left over sits under a key this stripper does not know (pdfTeX's
# /PTEX.InfoDict, a job ticket's audit trail, an application's private dictionary).
_DATE = re.compile(rb"\s*D:(19|20)\d\d(\d\d){0,5}([Z+'-][\d']*)?\s*")
# ISO 16684-1 §7.3: the wrapper of an XMP packet, wherever a stream hides one, in each
# encoding a packet may have (UTF-8, UTF-16, UTF-32, either byte order).
_XMP = tuple(
    marker.encode(encoding)
    for marker in ("<?xpacket begin=", "<x:xmpmeta", "<x:xapmeta")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


class _Forms:
    """The encoded forms of some needles, each with its needle's label, longest first.

    Searched with `bytes.find`, one pass per form: C's substring search outruns one regular
    expression alternating between dozens of forms, and there is nothing to compile.
    """

    def __init__(self, needles: Iterable[Needle], *, min_bytes: int = 1) -> None:
        labels = {form: item.label for item in needles for form in item.forms}
        # Longest first, so where forms overlap at one place the longest names it.
        ordered = sorted((form for form in labels if len(form) >= min_bytes), key=_longest)
        self.forms = tuple((form, labels[form]) for form in ordered)

    def found_in(self, data: bytes) -> bool:
        return any(form in data for form, _ in self.forms)

    def hits(self, data: bytes, place: str) -> list[str]:
        """ "<label> in <place>" for each form in `data`, in the order they first occur."""
        first: dict[str, tuple[int, int]] = {}
        for rank, (form, label) in enumerate(self.forms):
            at = data.find(form)
            if at >= 0 and (at, rank) < first.get(label, (len(data), 0)):
                first[label] = (at, rank)
        return [f"{label} in {place}" for label in sorted(first, key=first.__getitem__)]


def _longest(form: bytes) -> tuple[int, bytes]:
    return -len(form), form


class _Patterns:
    """The forms searched for, per kind of place."""

    def __init__(self, needles: Iterable[Needle], shown: list[bytes]) -> None:
        identity = [item for item in needles if item.identity]
        # A descriptive value the pages show is the document's own text, wherever it recurs.
        described = [
            item
            for item in needles
            if not item.identity
            and not item.short
            and not any(form in data for data in shown for form in item.forms)
        ]
        long_identity = [item for item in identity if not item.short]
        self.binary = _Forms(long_identity)  # file bytes, names, fonts
        self.strings = _Forms(identity)  # PDF strings: short names still count
        self.text = _Forms([*long_identity, *described])  # every other stream
        self.samples = _Forms(long_identity, min_bytes=_IN_SAMPLES)  # image data


def find_leaks(
    pdf: pikepdf.Pdf,
    data: bytes,
    needles: Iterable[Needle],
    content: set[ObjGen],
    walked: Graph | None = None,
) -> tuple[str, ...]:
    """Where a copy still holds one of the original's values: "<label> in <place>".

    Page content streams (`content`) may show any value: that is the document's own text.
    Names, identifiers and dates are leaks anywhere else: in the file's bytes, in any string,
    in any name of 4 characters or more, in the data of any stream with its byte-level
    filters undone (in image data, only forms of 8 bytes or more). Descriptive values (title,
    subject, keywords, creator tool, producer) are leaks only in streams other than fonts and
    images, and only if the pages do not show them: a report titled "Report" may name itself
    in a bookmark, and "Draw" is in fonts. Any string that is a date, and any XMP packet
    outside page content, is a leak whatever its value.
    """
    objects = graph(pdf) if walked is None else walked
    fonts = {
        font.objgen
        for obj, _ in objects
        if isinstance(obj, Dictionary)
        for key in _FONT_FILES
        if isinstance(font := obj.get(key), Stream)
    }
    shown = [stream_bytes(pdf, obj) for obj, _ in objects if _streams_in(obj, content)]
    patterns = _Patterns(needles, shown)
    found = patterns.binary.hits(data, "the file bytes")
    strings: defaultdict[ObjGen, list[bytes]] = defaultdict(list)
    names: defaultdict[ObjGen, list[bytes]] = defaultdict(list)
    for obj, owner in objects:
        _scalars(obj, strings[owner], names[owner])
        if isinstance(obj, Stream) and obj.objgen not in content:
            found.extend(_stream_leaks(pdf, obj, patterns, obj.objgen in fonts))
    joined = {owner: _SEPARATOR.join(parts) for owner, parts in strings.items()}
    joined_names = {owner: _SEPARATOR.join(parts) for owner, parts in names.items()}
    # Copies are mostly clean: one search of all strings and all names together decides
    # whether any object needs a search of its own.
    in_strings = patterns.strings.found_in(_SEPARATOR.join(joined.values()))
    in_names = patterns.binary.found_in(_SEPARATOR.join(joined_names.values()))
    for owner in strings:
        place = "object {} {}".format(*owner) if owner != (0, 0) else "the trailer"
        if in_strings:
            found.extend(patterns.strings.hits(joined[owner], place))
        if in_names:
            found.extend(patterns.binary.hits(joined_names[owner], place))
        found.extend(f"a date in {place}" for text in strings[owner] if _DATE.fullmatch(text))
    return unique(found)


def _stream_leaks(pdf: pikepdf.Pdf, stream: Stream, patterns: _Patterns, font: bool) -> list[str]:
    place = "stream {} {}".format(*stream.objgen)
    data = stream_bytes(pdf, stream)
    if stream.get("/Subtype") == IMAGE:
        return patterns.samples.hits(data, place)
    found = (patterns.binary if font else patterns.text).hits(data, place)
    if not font and any(marker in data for marker in _XMP):
        found.append(f"an XMP packet in {place}")
    return found


def _streams_in(obj: Container, content: set[ObjGen]) -> TypeGuard[Stream]:
    return isinstance(obj, Stream) and obj.objgen in content


def _scalars(obj: Container, strings: list[bytes], names: list[bytes]) -> None:
    items: Iterable[object]
    if isinstance(obj, Array):
        items = obj
    else:
        keys = obj.keys()
        # pikepdf decodes keys that are not UTF-8 with surrogate escapes
        names.extend(key.encode("utf-8", "surrogateescape") for key in keys)
        items = [obj.get(key) for key in keys]
    for item in items:
        if isinstance(item, String):
            strings.append(bytes(item))
        elif isinstance(item, Name):
            names.append(name_bytes(item))
