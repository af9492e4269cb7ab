"""PDF (ISO 32000) metadata read with pikepdf: Info, XMP, annotation authors, thumbnails."""

from __future__ import annotations

import io
import itertools
import warnings
import zlib
from functools import partial
from typing import BinaryIO

import pikepdf

from custody.metadata.extractors import xmp
from custody.metadata.extractors.collector import Collector, LimitError

_MAX_ANNOTATIONS = 10_000
_IN_MEMORY = 32 * 1024 * 1024  # bytes; a larger PDF is read where it lies


class _InMemory(io.BytesIO):
    def __repr__(self) -> str:  # qpdf quotes its stream in errors: as BoundedReader does
        return "<evidence file>"


def extract_pdf(fh: BinaryIO, out: Collector) -> None:
    """Info ("PDF:Info/Author"), catalog XMP, "/Annots" authors, /Thumb, /PieceInfo."""
    size = fh.seek(0, io.SEEK_END)
    if size > out.limits.pdf_max_bytes:
        out.error("pdf", f"not parsed: {size} bytes is above {out.limits.pdf_max_bytes}")
        return
    fh.seek(0)
    # qpdf reads a Python stream with a call per read, seek and tell: a PDF of ordinary size
    # is read once (through the same budget) and parsed from memory, several times faster.
    source = _InMemory(fh.read()) if size <= _IN_MEMORY else fh
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pdf = pikepdf.open(source)
    except pikepdf.PasswordError:
        # The metadata is encrypted with the content (§7.6): nothing to read without the key.
        out.error("pdf", "encrypted")
        return
    with pdf:
        if pdf.is_encrypted:
            out.add("PDF:Encrypted", "opened without a user password", literal=False)
        for section in (_info, _catalog, _pages):
            out.guard("pdf", partial(section, pdf, out))


def _text(value: object) -> str:
    if isinstance(value, pikepdf.String | pikepdf.Name):
        return str(value)
    return repr(value)


def _info(pdf: pikepdf.Pdf, out: Collector) -> None:
    """The document information dictionary (§14.3.3) and the file identifier (§14.4)."""
    for key, value in pdf.docinfo.items():
        out.add(f"PDF:Info/{key.lstrip('/')}", _text(value))
    identifier = pdf.trailer.get("/ID")
    if isinstance(identifier, pikepdf.Array) and len(identifier):
        out.add("PDF:ID", bytes(identifier[0]), literal=False)


def _catalog(pdf: pikepdf.Pdf, out: Collector) -> None:
    """The catalog's XMP stream (§14.3.2), page-piece data (§14.5), embedded files (§7.11.4)."""
    root = pdf.Root
    if "/PieceInfo" in root:
        out.add("PDF:PieceInfo", _keys(root.PieceInfo), literal=False)
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/EmbeddedFiles" in names:
        out.add("PDF:EmbeddedFiles", "present", literal=False)
    metadata = root.get("/Metadata")
    if isinstance(metadata, pikepdf.Stream):
        xmp.parse_packet(_stream_bytes(metadata, out.limits.xmp_packet), out)


def _pages(pdf: pikepdf.Pdf, out: Collector) -> None:
    """Per page: /Thumb images (§12.3.4), /PieceInfo, and each annotation's /T, /Contents, /M."""
    annotations = 0
    for page in itertools.islice(pdf.pages, out.limits.pdf_max_pages):
        if "/Thumb" in page.obj:
            out.add("PDF:Thumb", "present", literal=False)
        if "/PieceInfo" in page.obj:
            out.add("PDF:PieceInfo", _keys(page.obj.PieceInfo), literal=False)
        annots = page.obj.get("/Annots")
        for annotation in annots if isinstance(annots, pikepdf.Array) else ():
            annotations += 1
            if annotations > _MAX_ANNOTATIONS:
                raise LimitError(f"more than {_MAX_ANNOTATIONS} annotations")
            # A widget's /T names its form field, not a person (§12.7.4.1); a link has none.
            if not isinstance(annotation, pikepdf.Dictionary) or annotation.get("/Subtype") in (
                pikepdf.Name.Widget,
                pikepdf.Name.Link,
            ):
                continue
            for key in ("/T", "/Contents", "/M"):
                if key in annotation:
                    out.add(f"PDF:Annots/{key[1:]}", _text(annotation[key]))
    if len(pdf.pages) > out.limits.pdf_max_pages:
        out.error("pdf", f"pages after the first {out.limits.pdf_max_pages} not inspected")


def _keys(dictionary: object) -> str:
    if isinstance(dictionary, pikepdf.Dictionary):
        return " ".join(str(key) for key in dictionary)
    return repr(dictionary)


def _stream_bytes(stream: pikepdf.Stream, limit: int) -> bytes:
    """A stream's data, unfiltered only when unfiltered or Flate (inflation is bounded)."""
    length = stream.stream_dict.get("/Length")
    if isinstance(length, int) and length > limit:
        raise LimitError(f"XMP stream of {length} bytes")
    raw = stream.read_raw_bytes()
    filters = stream.get("/Filter")
    if filters is None:
        data = raw
    elif filters == pikepdf.Name.FlateDecode:
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, limit + 1)
    else:
        raise LimitError(f"XMP stream with filter {filters}")
    if len(data) > limit:
        raise LimitError(f"XMP stream above {limit} bytes")
    return data
