"""The object graph of a PDF (ISO 32000-2 §7.3, §7.5.8): what a full rewrite writes out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from custody.metadata.base import StripError

ObjGen = tuple[int, int]  # object number and generation (§7.3.10); (0, 0) for direct objects
Container = Array | Dictionary | Stream

# §12.5.6.1 Table 171 (with the PDF 2.0 additions): annotation subtypes. /Subtype names of
# fonts and XObjects never collide with these, so the subtype alone marks an annotation.
# fmt: off
ANNOTATIONS = frozenset({
    b"/Text", b"/Link", b"/FreeText", b"/Line", b"/Square", b"/Circle", b"/Polygon",
    b"/PolyLine", b"/Highlight", b"/Underline", b"/Squiggly", b"/StrikeOut", b"/Caret",
    b"/Stamp", b"/Ink", b"/Popup", b"/FileAttachment", b"/Sound", b"/Movie", b"/Screen",
    b"/Widget", b"/PrinterMark", b"/TrapNet", b"/Watermark", b"/3D", b"/Redact", b"/Projection",
    b"/RichMedia",
})
# fmt: on
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# The containers `reachable` follows, as a tuple: pikepdf checks a tuple faster than a union.
_CONTAINERS = (Array, Dictionary, Stream)
# Names compared against on every object: each `Name.X` lookup builds a new object.
ANNOT, FORM, IMAGE, PAGE, SIG, WIDGET = (
    Name(f"/{name}") for name in ("Annot", "Form", "Image", "Page", "Sig", "Widget")
)
EMBEDDED_FILE = Name("/EmbeddedFile")


def reachable(pdf: pikepdf.Pdf) -> Iterator[tuple[Container, ObjGen]]:
    """Every array, dictionary and stream reachable from the trailer, once, with its owner.

    The owner is the object's own number if indirect, else that of the nearest indirect
    object holding it. qpdf writes exactly these objects, so they are what a copy holds.
    Keys a caller deletes before asking for the next object are not followed.
    """
    seen: set[ObjGen] = set()
    stack: list[tuple[object, ObjGen]] = [(pdf.trailer, (0, 0))]
    while stack:
        obj, owner = stack.pop()
        if not isinstance(obj, _CONTAINERS):
            continue
        if obj.is_indirect:
            owner = obj.objgen
            if owner in seen:
                continue  # also what stops reference cycles (§7.3.10 allows them)
            seen.add(owner)
        yield obj, owner
        if isinstance(obj, Array):
            stack.extend((item, owner) for item in obj)
        else:
            stack.extend((obj.get(key), owner) for key in obj.keys())  # noqa: SIM118


Graph = list[tuple[Container, ObjGen]]


def graph(pdf: pikepdf.Pdf) -> Graph:
    """`reachable`, walked once, for passes that change nothing: each walk of a large PDF
    costs as much as the work the pass then does."""
    return list(reachable(pdf))


def dictionaries(pdf: pikepdf.Pdf, walked: Graph | None = None) -> Iterator[Dictionary | Stream]:
    """The dictionaries and stream dictionaries of `reachable` (or of `walked`, its list)."""
    for obj, _ in reachable(pdf) if walked is None else walked:
        if not isinstance(obj, Array):
            yield obj


def streams(pdf: pikepdf.Pdf, walked: Graph | None = None) -> Iterator[Stream]:
    for obj, _ in reachable(pdf) if walked is None else walked:
        if isinstance(obj, Stream):
            yield obj


def is_annotation(obj: Dictionary | Stream, keys: set[str]) -> bool:
    """By /Type or /Subtype; `keys` are the object's (read once by the caller), so entries it
    does not hold are not looked up."""
    return ("/Type" in keys and obj.get("/Type") == ANNOT) or (
        "/Subtype" in keys and name_bytes(obj.get("/Subtype")) in ANNOTATIONS
    )


def name_bytes(name: object) -> bytes:
    """A name's bytes with #xx escapes undone (§7.3.5: names need not be UTF-8); b"" if none."""
    if not isinstance(name, Name):
        return b""
    raw = bytes(name.unparse())
    if b"#" not in raw:
        return raw
    return _ESCAPE.sub(lambda match: bytes([int(match[1], 16)]), raw)


def filters(stream: Stream) -> tuple[list[Name], list[object]]:
    """The /Filter names of a stream and their /DecodeParms, as equal-length lists (§7.4)."""
    names = stream.get("/Filter")
    parms = stream.get("/DecodeParms")
    name_list = list(names) if isinstance(names, Array) else [] if names is None else [names]
    parm_list = list(parms) if isinstance(parms, Array) else [parms]
    parm_list = (parm_list + [None] * len(name_list))[: len(name_list)]
    names_only = [name for name in name_list if isinstance(name, Name)]
    if len(names_only) != len(name_list):
        raise StripError("PDF stream /Filter holds something other than names")
    return names_only, list(parm_list)
