"""Metadata extraction from an original: every family's fields, and what to warn about.

A parser failure never blocks ingest: each extractor runs under a guard that records the
failure in `Metadata.errors` (extractor name, exception type and message), and the others
still run. Work per file is bounded by `Limits` (bytes read, fields, members, pages).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import Metadata
from custody.metadata.extractors.audio import extract_apev2, extract_audio, extract_id3
from custody.metadata.extractors.collector import BoundedReader, Budget, Collector, Limits
from custody.metadata.extractors.exif import extract_exif
from custody.metadata.extractors.gif import extract_gif
from custody.metadata.extractors.heif import extract_heif_exif
from custody.metadata.extractors.jpeg import extract_jpeg
from custody.metadata.extractors.odf import extract_odf
from custody.metadata.extractors.ooxml import extract_ooxml
from custody.metadata.extractors.package import Package
from custody.metadata.extractors.pdf import extract_pdf
from custody.metadata.extractors.png import extract_png
from custody.metadata.extractors.quicktime import extract_quicktime
from custody.metadata.extractors.riff import extract_riff, extract_webp
from custody.metadata.extractors.xmp import extract_xmp

__all__ = ["DEFAULT_LIMITS", "Limits", "extract_metadata"]

DEFAULT_LIMITS = Limits()

Extractor = Callable[[BinaryIO, Collector], None]


def _extract_zip(fh: BinaryIO, out: Collector) -> None:
    """A ZIP that media detection could not name (e.g. a damaged OOXML or ODF package)."""
    names = Package(fh, out.limits).names
    fh.seek(0)
    (extract_odf if "meta.xml" in names else extract_ooxml)(fh, out)


_FAMILIES: dict[str, Extractor] = {
    "exif": extract_exif,
    "heif_exif": extract_heif_exif,
    "jpeg": extract_jpeg,
    "png": extract_png,
    "gif": extract_gif,
    "xmp": extract_xmp,
    "audio": extract_audio,
    "id3": extract_id3,
    "webp": extract_webp,
    "apev2": extract_apev2,
    "riff": extract_riff,
    "quicktime": extract_quicktime,
    "pdf": extract_pdf,
    "ooxml": extract_ooxml,
    "odf": extract_odf,
    "zip": _extract_zip,
}
_IMAGE = ("exif", "xmp")
_HEIF = ("heif_exif", "xmp", "quicktime")  # quicktime: HEIF thumbnail items
_VIDEO = ("audio", "quicktime", "xmp")
_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
# Media type (without parameters) -> the families read, in order. Types not listed get the
# XMP scan alone: any file can carry an XMP packet.
_REGISTRY: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("exif", "jpeg"),  # jpeg parses the APP1 XMP, incl. extended XMP
    "image/png": ("exif", "png"),  # png parses iTXt XMP, incl. compressed
    "image/tiff": _IMAGE,
    "image/x-canon-cr2": _IMAGE,
    "image/webp": ("webp",),  # exifread misreads spec-conforming WebP EXIF chunks
    "image/gif": ("gif", "xmp"),
    "image/heic": _HEIF,
    "image/heif": _HEIF,
    "image/heif-sequence": _HEIF,
    "image/avif": _HEIF,
    "audio/mpeg": ("id3", "apev2", "xmp"),  # id3 alone: tags need no valid MPEG frames
    "audio/flac": ("audio",),
    "audio/ogg": ("audio",),
    "video/ogg": ("audio",),
    "audio/wav": ("audio", "riff", "xmp"),
    "audio/aiff": ("audio", "riff"),
    "audio/mp4": _VIDEO,
    "video/mp4": _VIDEO,
    "video/quicktime": _VIDEO,
    "video/3gpp": _VIDEO,
    "video/3gpp2": _VIDEO,
    "application/pdf": ("pdf", "xmp"),  # xmp: packets of embedded images, uncompressed
    "application/zip": ("zip",),
}


_EMBEDDABLE = frozenset({"exif", "heif_exif", "jpeg", "png", "gif", "webp", "xmp", "quicktime"})


def _read_embedded(data: bytes, out: Collector) -> None:
    """An image inside a document, with the image families only (no package in a package)."""
    for family in families(detect_media_type(data[:SNIFF_BYTES])):
        if family in _EMBEDDABLE:
            out.guard(family, partial(_FAMILIES[family], out.reader(data), out))


def families(media_type: str) -> tuple[str, ...]:
    """The extractor families run for `media_type` (as `custody.media` detects it)."""
    base = media_type.partition(";")[0].strip().lower()
    if base.startswith(_OOXML):
        return ("ooxml",)
    if base.startswith(_ODF):
        return ("odf",)
    return _REGISTRY.get(base, ("xmp",))


def extract_metadata(
    source: Path | BinaryIO, media_type: str, *, limits: Limits = DEFAULT_LIMITS
) -> Metadata:
    """Read the metadata of the file at `source` (a path, or a seekable binary stream the
    caller closes); never raises for any content."""
    out = Collector(limits, embedded=_read_embedded)
    try:
        if isinstance(source, Path):
            with source.open("rb") as fh:
                _run_families(fh, media_type, out, limits)
        else:
            _run_families(source, media_type, out, limits)
    except OSError as exc:
        out.error("open", exc)
    return out.result(media_type)


def _run_families(fh: BinaryIO, media_type: str, out: Collector, limits: Limits) -> None:
    for family in families(media_type):
        fh.seek(0)
        # Each parser gets its own read budget, and its own guard.
        out.budget = Budget(limits)
        reader = cast(BinaryIO, BoundedReader(fh, out.budget))
        out.guard(family, partial(_FAMILIES[family], reader, out))
