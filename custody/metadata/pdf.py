"""PDF sharing copies (ISO 32000-2): a full rewrite without Info, XMP, private data or authors."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pikepdf

from custody.metadata.base import StripError, StripReport
from custody.metadata.binary import unique
from custody.metadata.pdf_clean import clean, clean_trailer
from custody.metadata.pdf_graph import Graph, graph
from custody.metadata.pdf_images import check_inline_jpeg, check_sizes, clean_images
from custody.metadata.pdf_leaks import find_leaks
from custody.metadata.pdf_needles import Needle, collect
from custody.metadata.pdf_text import read_pages

# What qpdf and pikepdf raise on malformed input (qpdf's C++ logic and range errors arrive
# as RuntimeError, ValueError or IndexError; a wrongly typed object as TypeError).
_LIBRARY_ERRORS = (
    pikepdf.PdfError,
    RuntimeError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
)
# Warnings that say nothing about the input: pikepdf's advice on copying pages with forms
# (qpdf's full rewrite keeps every widget), and the interpreter's own.
_UNRELATED = (
    pikepdf.exceptions.PageCopyWarning,
    ResourceWarning,
    DeprecationWarning,
    ImportWarning,
)
_DETAIL_CHARS = 120  # of a parser message kept in a refusal reason
# qpdf names the input first, here with pikepdf's repr of the BytesIO (a memory address).
_SOURCE_PREFIX = re.compile(r"^stream <[^<>]*>:?\s*")


class PdfStripper:
    """Sharing copies of PDF: pages, text, images, fonts, forms and links, without metadata.

    The copy is a full rewrite by qpdf, never an incremental update: only objects reachable
    from the new trailer are written, so no earlier revision and no dropped object survives.
    Removed: the Info dictionary, the trailer /ID (qpdf derives a new one from the copy's
    bytes) and every other trailer entry; every /Metadata (XMP) stream, on any object;
    /PieceInfo, /Private, /LastModified, page thumbnails, web-capture data, job tickets,
    pdfTeX's included-file data, OPI references, optional-content creator and user info and
    thread Info; annotation authors (/T), dates (/M, /CreationDate) and names (/NM);
    JavaScript (document scripts and /AA go, every /JS is emptied); signature values and
    appearances, /Perms, /DSS and /SigFlags; static XFA packets; the Exif, XMP and other APPn
    segments of JPEG images and the xml, uuid and other non-decoding boxes of JPEG 2000
    images, whose image data stays byte-identical.
    Kept: every page and content stream (decoded bytes unchanged), resources, fonts, ICC
    profiles, annotations and form fields with their values, outlines, links, structure.
    Refused: encrypted PDFs; PDFs qpdf cannot read without repair or warns about; embedded
    files, portfolios and embedded media; dynamic XFA forms; streams with unknown filters;
    inline JPEGs with metadata; Launch actions, and links and file specifications naming a
    local path (`refuse_local_links`); signature dictionaries outside a signature field.
    Then the copy is re-opened and refused unless it has the same pages and page-text
    digest, nothing a second strip would remove, a fresh /ID, and none of the original's
    Info, XMP, annotation-author or signer values, no date string and no XMP packet outside
    its page content (see `find_leaks`).
    The digest ("pdf-text-per-page") is defined by `read_pages`. A PDF needs random access,
    so the source is read whole: memory is a small multiple of the file's size.
    """

    name = "pdf"
    version = "pdf/2"
    media_types = frozenset({"application/pdf"})
    # `strip` reads the original's pages for the digest and the copy's to compare (`_verify`).
    digests_both_sides = True

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        data = source.read()
        with _converted():
            copy, report = _strip(data)
        sink.write(copy)
        return report

    def content_digest(self, source: BinaryIO) -> str:
        data = source.read()
        with _converted(), _opened(data) as pdf:
            check_sizes(pdf)
            digest = read_pages(pdf).digest
            _refuse_warnings(pdf)
            return digest


def _strip(data: bytes) -> tuple[bytes, StripReport]:
    with _opened(data) as pdf:
        walked = graph(pdf)  # for the passes that only read
        check_sizes(pdf, walked)
        needles = collect(pdf, walked)
        text = read_pages(pdf)
        for jpeg in text.inline_jpegs:
            check_inline_jpeg(jpeg)
        removed = clean_trailer(pdf)
        cleaned: Graph = []  # the objects the copy will hold, once metadata entries are gone
        removed += clean(pdf, seen=cleaned)
        removed += clean_images(pdf, cleaned)
        pages = len(pdf.pages)
        copy = _save(pdf)
        _refuse_warnings(pdf)  # after the save, which reads every object and stream
    _verify(copy, needles, text.digest, pages)
    return copy, StripReport(unique(removed), text.digest, "pdf-text-per-page")


def _save(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(
        out,
        linearize=False,
        # Every object in plain sight, one classic xref table: easy to audit by eye.
        object_stream_mode=pikepdf.ObjectStreamMode.disable,
        compress_streams=True,
        stream_decode_level=pikepdf.StreamDecodeLevel.generalized,
        # Flate data is inflated and compressed again, not copied: bytes after the end of
        # a zlib stream, which no reader shows, would otherwise ride along unread.
        recompress_flate=True,
        fix_metadata_version=False,  # it would write an XMP packet back into the copy
        deterministic_id=True,  # the new /ID is an MD5 of the copy: no clock, no randomness
    )
    return out.getvalue()


def _verify(copy: bytes, needles: list[Needle], digest: str, pages: int) -> None:
    """Re-open the copy: same pages and text, nothing left to strip, none of the values."""
    with _opened(copy) as pdf:
        extra = set(pdf.trailer.keys()) - {"/Root", "/Size", "/ID"}
        if extra:
            raise StripError("PDF copy's trailer has extra entries", found=tuple(sorted(extra)))
        _check_id(pdf.trailer.get("/ID"))
        if len(pdf.pages) != pages:
            raise StripError("PDF copy has a different number of pages")
        text = read_pages(pdf)
        if text.digest != digest:
            raise StripError("PDF copy's page text differs from the original's")
        # One walk of the copy's objects for the three passes: a second strip must remove
        # nothing (else the copy is refused), so the graph does not change between them.
        walked = graph(pdf)
        left = clean(pdf, walked) + clean_images(pdf, walked)
        if left:
            raise StripError("PDF copy still holds metadata", found=tuple(left))
        leaks = find_leaks(pdf, copy, needles, text.content, walked)
        if leaks:
            raise StripError("PDF copy still holds values of the original's metadata", found=leaks)
        _refuse_warnings(pdf)


def _check_id(ids: object) -> None:
    """qpdf writes a fresh /ID as two equal strings; a kept original first string would differ.

    (QPDFWriter::generateID keeps the first string of an /ID it finds in the trailer.)
    """
    if not (isinstance(ids, pikepdf.Array) and len(ids) == 2 and ids[0] == ids[1]):
        raise StripError("PDF copy's document ID is not a fresh one")


@contextmanager
def _opened(data: bytes) -> Iterator[pikepdf.Pdf]:
    try:
        # No xref reconstruction: a file qpdf cannot read as written is refused, not guessed at.
        pdf = pikepdf.open(io.BytesIO(data), attempt_recovery=False, conversion_mode="explicit")
    except pikepdf.PasswordError as exc:
        raise StripError("PDF is encrypted with a password") from exc
    with pdf:
        if pdf.is_encrypted:
            # Even with an empty user password: a decrypted copy would drop the owner's
            # restrictions, a re-encrypted one could not be checked for leftovers.
            raise StripError("PDF is encrypted")
        yield pdf


def _refuse_warnings(pdf: pikepdf.Pdf) -> None:
    """Fail closed on anything qpdf had to work around: another reader may see other content."""
    found = pdf.get_warnings()
    if found:
        detail = _SOURCE_PREFIX.sub("", str(found[0]), count=1).strip()[:_DETAIL_CHARS]
        raise StripError(f"PDF is damaged: {detail}", found=(f"{len(found)} parser warnings",))


@contextmanager
def _converted() -> Iterator[None]:
    """Turn the PDF library's errors and warnings into StripError: none leaves this module.

    pikepdf reports some damage only through `warnings` (operands left at the end of a
    content stream, which no reader shows). The warnings filter is process-wide, so another
    thread's warning may land here (a needless refusal) or ours there (a copy whose text
    digest is still exact, since dangling operands show nothing).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except _LIBRARY_ERRORS as exc:
            detail = _SOURCE_PREFIX.sub("", str(exc).split("\n", 1)[0], count=1).strip()
            raise StripError(f"PDF cannot be read: {detail[:_DETAIL_CHARS]}") from exc
    damage = [str(item.message) for item in caught if not issubclass(item.category, _UNRELATED)]
    if damage:
        raise StripError(f"PDF is damaged: {damage[0][:_DETAIL_CHARS]}")
