"""The text a PDF's pages show (ISO 32000-2 §9.4.3 text-showing operators), for its digest."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream, String

from custody.metadata.base import StripError
from custody.metadata.pdf_graph import FORM, ObjGen

_SHOW = frozenset({b"Tj", b"TJ", b"'", b'"'})  # §9.4.3 Table 107
# The only operators the walk reads: qpdf still tokenises the whole stream (and reports its
# damage), but hands back these alone, with their operands, in content order.
_READ = "Tj TJ ' \" Do BI ID EI"
_MAX_DEPTH = 32  # form XObjects inside form XObjects: deeper nesting is not a real document's
_WHITESPACE = b"\x00\t\n\x0c\r "  # §7.2.3 Table 1
_DCT_NAMES = frozenset({b"/DCTDecode", b"/DCT"})  # §8.9.7 Table 91 allows the abbreviation


@dataclass
class PageText:
    """The digest of the pages' shown strings, and the content streams they came from."""

    digest: str = ""
    content: set[ObjGen] = field(default_factory=set)  # page contents and the forms they draw
    inline_jpegs: list[bytes] = field(default_factory=list)  # inline images with DCTDecode


def read_pages(pdf: pikepdf.Pdf) -> PageText:
    """SHA-256 over the strings each page's text-showing operators show, page by page.

    Per page: b"P" and the page index (4 bytes, big-endian); then for each string operand of
    Tj, ', " and TJ (in content order, form XObjects drawn with Do expanded in place): b"T",
    its length (4 bytes) and its raw bytes as stored, in the font's encoding (not Unicode).
    A copy keeps every content stream's decoded bytes, so its digest equals the original's.
    """
    reader = _Reader()
    for index, page in enumerate(pdf.pages):
        reader.hash.update(b"P" + struct.pack(">I", index))
        contents = page.obj.get("/Contents")
        for stream in contents if isinstance(contents, Array) else [contents]:
            if isinstance(stream, Stream):
                reader.text.content.add(stream.objgen)
        reader.walk(pikepdf.parse_content_stream(page, _READ), page.obj.get("/Resources"), ())
    reader.text.digest = reader.hash.hexdigest()
    return reader.text


class _Reader:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.text = PageText()
        self.parsed: dict[ObjGen, list[pikepdf.ContentStreamInstructions]] = {}

    def walk(
        self,
        instructions: list[pikepdf.ContentStreamInstructions],
        resources: object,
        forms: tuple[ObjGen, ...],
    ) -> None:
        for instruction in instructions:
            if isinstance(instruction, pikepdf.ContentStreamInlineImage):
                self._inline(instruction.iimage)
                continue
            # Bytes, not str: an unknown operator need not be UTF-8, and readers skip it.
            operator = bytes(instruction.operator.unparse())
            if operator in _SHOW:
                self._show(instruction.operands)
            elif operator == b"Do" and instruction.operands:
                self._draw(instruction.operands[0], resources, forms)

    def _show(self, operands: list[object]) -> None:
        for operand in operands:
            for item in operand if isinstance(operand, Array) else [operand]:
                if isinstance(item, String):
                    data = bytes(item)
                    self.hash.update(b"T" + struct.pack(">I", len(data)) + data)

    def _draw(self, name: object, resources: object, forms: tuple[ObjGen, ...]) -> None:
        if not isinstance(name, Name) or not isinstance(resources, Dictionary):
            return
        xobjects = resources.get("/XObject")
        form = xobjects.get(name) if isinstance(xobjects, Dictionary) else None
        if not isinstance(form, Stream) or form.get("/Subtype") != FORM:
            return
        if form.objgen in forms:
            return  # a form that draws itself: its text is already in the digest once
        if len(forms) >= _MAX_DEPTH:
            raise StripError("PDF form XObjects are nested implausibly deep")
        self.text.content.add(form.objgen)
        if form.objgen not in self.parsed:
            self.parsed[form.objgen] = pikepdf.parse_content_stream(form, _READ)
        inner = form.get("/Resources")
        # §7.8.3: a form without /Resources uses those of the page or form that draws it.
        inner = inner if inner is not None else resources
        self.walk(self.parsed[form.objgen], inner, (*forms, form.objgen))

    def _inline(self, image: pikepdf.PdfInlineImage) -> None:
        names = [str(name).encode("utf-8", "surrogateescape") for name in image.filters]
        if _DCT_NAMES & set(names):
            if names[-1] not in _DCT_NAMES or len(names) > 1:
                raise StripError("PDF inline JPEG image has further filters")
            # The span qpdf returns includes the whitespace before EI (§8.9.7), not JPEG data.
            self.text.inline_jpegs.append(bytes(image.read_raw_bytes()).rstrip(_WHITESPACE))
