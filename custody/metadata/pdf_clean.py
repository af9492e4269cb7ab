"""Metadata removal from a PDF's objects (ISO 32000-2 §14.3, §12.5, §12.6, §12.8), and refusals."""

from __future__ import annotations

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream, String

from custody.metadata.base import StripError
from custody.metadata.binary import unique
from custody.metadata.pdf_graph import (
    EMBEDDED_FILE,
    PAGE,
    SIG,
    Graph,
    filters,
    is_annotation,
    name_bytes,
    reachable,
)
from custody.metadata.pdf_links import refuse_local_links
from custody.metadata.pdf_needles import marks_author

# Entries dropped from every dictionary that holds them, and the name recorded for each.
_DROPPED = {
    "/Metadata": "XMP metadata",  # §14.3.2: on the catalog, pages, images, fonts, forms
    "/PieceInfo": "PieceInfo",  # §14.5: the editing applications' private data
    "/Private": "application private data",  # §14.5 Table 372, wherever a data dict ends up
    "/LastModified": "LastModified",  # §14.5: when each page or form was last edited
    "/Thumb": "page thumbnail",  # §12.3.4: may show a page as it was before later edits
    "/AA": "additional actions",  # §12.6.3: scripts run on opening, closing, typing
    "/SpiderInfo": "web capture information",  # §14.10.2: source URLs and capture times
    "/Perms": "usage-rights and DocMDP signatures",  # §12.8.6: the signer's certificate
    "/DSS": "signature validation data",  # §12.8.4.3: certificates, OCSP and CRLs name signers
    "/Legal": "legal attestation",  # §12.8.7: about a signature the copy no longer has
    "/CreatorInfo": "optional-content creator",  # §8.11.4.4 Table 102: creating application
    "/User": "optional-content users",  # §8.11.4.4 Table 102: names of the intended readers
    "/OPI": "OPI proxy references",  # §14.11.7: file paths on the author's prepress system
    "/JT": "job ticket",  # PDF 1.3 §10.12: an audit trail of applications and dates
}
# pdfTeX's private entries on the form of an included PDF: that file's path on the author's
# disk (/PTEX.FileName) and its whole Info dictionary (/PTEX.InfoDict).
_PDFTEX_PREFIX = "/PTEX."
# §12.5.2 Table 166: when an annotation was made or changed, and its unique name (often
# an application's id for the author's session).
_ANNOTATION_DROPPED = {
    "/M": "annotation dates",
    "/CreationDate": "annotation dates",
    "/NM": "annotation names",
}
# §7.4.1 Table 6 (/Crypt only appears in encrypted files, which are refused).
# fmt: off
_FILTERS = frozenset({
    b"/ASCIIHexDecode", b"/ASCII85Decode", b"/LZWDecode", b"/FlateDecode", b"/RunLengthDecode",
    b"/CCITTFaxDecode", b"/JBIG2Decode", b"/DCTDecode", b"/JPXDecode",
})
# fmt: on
# Annotations holding another file (§13.3, §13.6, §13.7): its metadata cannot be stripped here.
_MEDIA = frozenset({b"/Sound", b"/Movie", b"/RichMedia", b"/3D"})
# §12.8.1 Table 255, §12.8.5: signature and document timestamp dictionaries (/Type is
# optional in the first: /ByteRange or /SubFilter with /Contents mark one too).
_SIGNATURES = (SIG, Name("/DocTimeStamp"))
_PAGE_TREE = (PAGE, Name("/Pages"))
_MAX_FIELD_DEPTH = 64  # levels of a form field tree; real forms have a handful
# §7.5.5, §7.5.8.2: how the original's cross-reference data was laid out; qpdf writes its own.
_XREF_KEYS = frozenset(
    {"/Info", "/Prev", "/XRefStm", "/Type", "/Filter", "/DecodeParms", "/Length", "/W", "/Index"}
)


def clean_trailer(pdf: pikepdf.Pdf) -> list[str]:
    """Drop the Info dictionary, the document ID and every other trailer entry but /Root.

    §14.4: the first /ID string is meant to stay with a file through all its versions, so
    a copy keeping it could be linked to the original and the author's machine; qpdf writes
    a new one (an MD5 of the copy's content, with `deterministic_id`). /Size it rewrites.
    """
    removed: list[str] = []
    info = pdf.trailer.get("/Info")
    if isinstance(info, Dictionary):
        removed.extend(f"Info {key}" for key in sorted(info.keys()))
    for key in list(pdf.trailer.keys()):
        if key not in ("/Root", "/Size"):
            del pdf.trailer[key]
            if key == "/ID":
                removed.append("document ID")
            elif key not in _XREF_KEYS:
                removed.append(f"trailer {key}")
    return removed


def clean(pdf: pikepdf.Pdf, walked: Graph | None = None, *, seen: Graph | None = None) -> list[str]:
    """Remove every metadata entry the objects hold; refuse what a copy cannot keep safely.

    With `walked` (the graph listed beforehand), objects reachable only through an entry
    removed here are still visited: give it only where nothing is expected to go. Without
    it, `seen` (if given) receives the objects walked: the graph as it is after the removals
    (an entry goes before the walk follows it), which the passes after this one can reuse.
    """
    removed: list[str] = []
    root = pdf.Root
    if not isinstance(root, Dictionary):
        raise StripError("PDF has no document catalog")
    _clean_catalog(root, removed)
    for obj, owner in reachable(pdf) if walked is None else walked:
        if seen is not None:
            seen.append((obj, owner))
        if isinstance(obj, Array):
            continue
        # Each lookup crosses into qpdf: read the keys once, look up only entries present.
        keys = obj.keys()
        kind = obj.get("/Type") if "/Type" in keys else None
        annotation = is_annotation(obj, keys)
        _refuse(obj, keys, kind, annotation)
        _clean_dictionary(obj, keys, kind, annotation, removed)
    return list(unique(removed))


def _clean_catalog(root: Dictionary, removed: list[str]) -> None:
    names = root.get("/Names")
    if isinstance(names, Dictionary):
        if "/EmbeddedFiles" in names:
            raise StripError("PDF has embedded files (attachments)")
        if "/JavaScript" in names:  # §7.7.4: document-level scripts, run on opening
            del names["/JavaScript"]
            removed.append("document JavaScript")
        for key in ("/IDS", "/URLS"):  # §14.10.4: web-capture content sets: URLs and times
            if key in names:
                del names[key]
                removed.append("web capture information")
    if "/Collection" in root:
        raise StripError("PDF is a portfolio (collection of embedded files)")
    form = root.get("/AcroForm")
    if isinstance(form, Dictionary):
        if "/XFA" in form:
            if root.get("/NeedsRendering") == True:  # noqa: E712 (a pikepdf Boolean)
                # §12.7.9: a dynamic XFA form's pages are only a placeholder; its content
                # lives in the XFA packets, which are XML this stripper does not read.
                raise StripError("PDF is a dynamic XFA form")
            # Static XFA duplicates the AcroForm fields the pages show; its packets carry
            # their own authoring data, so the copy keeps only the AcroForm.
            del form["/XFA"]
            removed.append("XFA form")
        if "/SigFlags" in form:
            del form["/SigFlags"]
            removed.append("signature flags")
    threads = root.get("/Threads")
    for thread in threads if isinstance(threads, Array) else []:
        if isinstance(thread, Dictionary) and "/I" in thread:
            del thread["/I"]  # §12.4.3 Table 160: an Info-like dictionary (title, author)
            removed.append("article thread information")


def _refuse(obj: Dictionary | Stream, keys: set[str], kind: object, annotation: bool) -> None:
    refuse_local_links(obj, keys)
    if kind in _SIGNATURES or "/ByteRange" in keys or {"/SubFilter", "/Contents"} <= keys:
        # §12.8.1: the signer's certificate (/Contents), name, place and reason. One a
        # signature field holds as /V is gone before the walk reaches it (`_clean_dictionary`).
        raise StripError("PDF has a signature dictionary outside a signature field's value")
    # §7.11.4: an embedded file is a whole file of another format, with its own metadata,
    # and part of the evidence: it can be neither stripped here nor silently dropped.
    if "/EF" in keys or kind == EMBEDDED_FILE:
        raise StripError("PDF has embedded files (attachments)")
    if annotation and name_bytes(obj.get("/Subtype")) in _MEDIA:
        raise StripError("PDF embeds media (sound, movie, 3D or rich media)")
    if (
        "/Filter" in keys
        and isinstance(obj, Stream)
        and not {name_bytes(n) for n in filters(obj)[0]} <= _FILTERS
    ):
        # Data no reader can decode cannot be searched for leftovers either.
        raise StripError("PDF stream has an unknown filter")


def _clean_dictionary(
    obj: Dictionary | Stream, keys: set[str], kind: object, annotation: bool, removed: list[str]
) -> None:
    """Drop the entries above from `obj`; `keys` are its keys beforehand, `kind` its /Type."""
    for key, label in _DROPPED.items():
        if key in keys:
            del obj[key]
            removed.append(label)
    for key in [key for key in keys if key.startswith(_PDFTEX_PREFIX)]:
        del obj[key]
        removed.append("pdfTeX included-file data")
    script = obj.get("/JS") if "/JS" in keys else None
    if script is not None and not (isinstance(script, String) and not bytes(script)):
        # §12.6.4.17: an action's script. An emptied action still does what follows it in
        # /Next and keeps every reference to it valid, so the copy needs no other change.
        obj["/JS"] = String("")
        removed.append("JavaScript")
    if annotation:
        for key, label in _ANNOTATION_DROPPED.items():
            if key in keys:
                del obj[key]
                removed.append(label)
        if "/T" in keys and marks_author(obj):
            del obj["/T"]
            removed.append("annotation author")
    if ("/FT" in keys or "/Parent" in keys) and _is_signature(obj):
        # §12.8: the signature would not verify over a copy anyway; its value holds the
        # signer's certificate and name, its appearance usually shows the name again.
        for key, label in (("/V", "signature"), ("/AP", "signature appearance")):
            if key in keys:
                del obj[key]
                removed.append(label)
    if kind == PAGE and "/ID" in keys:
        del obj["/ID"]  # §14.10.6: a web-capture digital identifier of the page's source
        removed.append("page web-capture ID")


def _is_signature(obj: Dictionary | Stream) -> bool:
    """A signature field, or a field or widget below one: /FT is inherited from the nearest
    ancestor that has it, through any number of levels (§12.7.4.1 Table 226)."""
    node: object = obj
    for _ in range(_MAX_FIELD_DEPTH):
        if not isinstance(node, Dictionary) or node.get("/Type") in _PAGE_TREE:
            return False  # a page's /Parent is its page tree node, not a field
        kind = node.get("/FT")
        if kind is not None:
            return bool(kind == SIG)
        node = node.get("/Parent")
    raise StripError("PDF form field tree is too deep (or a /Parent cycle)")
