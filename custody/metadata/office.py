"""Office document sharing copies: OOXML (ECMA-376 / ISO/IEC 29500), ODF 1.3 (ISO/IEC 26300)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import BinaryIO

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import StripError, Stripper, StripReport
from custody.metadata.gif import GifStripper
from custody.metadata.jpeg import JpegStripper
from custody.metadata.office_odf import ODF_TYPES, OdfFamily
from custody.metadata.office_ooxml import OoxmlFamily
from custody.metadata.office_package import Family, Kind, Treatment
from custody.metadata.office_xml import rewrite
from custody.metadata.office_zip import Package, PackageLimits, PackageWriter, zip_errors
from custody.metadata.png import PngStripper
from custody.metadata.tiff import TiffStripper
from custody.metadata.webp import WebpStripper

CONTENT_KIND = "office-document-text"
OOXML_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
# Images inside documents keep their camera's EXIF (GPS, serial numbers): each goes through
# the stripper of the type its bytes show; other image types (EMF, SVG...) are refused.
_IMAGES: tuple[Stripper, ...] = (
    JpegStripper(),
    PngStripper(),
    TiffStripper(),
    WebpStripper(),
    GifStripper(),
)
_IMAGE_TYPES = {media_type: s for s in _IMAGES for media_type in s.media_types}
Emit = Callable[[str, bytes, bool], None]  # name, data, stored


class _Text:
    """The content digest: SHA-256 over each text part's name and character data, by name."""

    def __init__(self) -> None:
        self._parts: dict[str, hashlib._Hash] = {}

    def part(self, name: str) -> Callable[[str], None]:
        digest = self._parts.setdefault(name, hashlib.sha256())

        def add(text: str) -> None:
            digest.update(text.encode("utf-8"))

        return add

    def hexdigest(self) -> str:
        total = hashlib.sha256()
        for name in sorted(self._parts):
            total.update(f"{name}\x00{self._parts[name].hexdigest()}\n".encode())
        return total.hexdigest()


def _family(package: Package) -> Family:
    if "mimetype" in package.names:
        return OdfFamily()
    return OoxmlFamily()


def _plan(package: Package, family: Family) -> dict[str, Treatment]:
    """Each member's treatment; StripError naming every member that must be refused."""
    treatments = {info.filename: family.classify(info.filename) for info in package.members}
    for info in package.members:
        # A 0-byte XML part is not well-formed and holds nothing: it goes, with its links.
        if treatments[info.filename].kind is Kind.XML and info.file_size == 0:
            treatments[info.filename] = Treatment(Kind.DROP, "empty part")
    refused = {name: t.why for name, t in treatments.items() if t.kind is Kind.REFUSE}
    if refused:
        first = next(iter(refused))
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise StripError(f"{first}: {refused[first]}{more}", found=tuple(refused))
    return treatments


def _image(name: str, data: bytes) -> tuple[bytes, tuple[str, ...]]:
    media_type = detect_media_type(data[:SNIFF_BYTES])
    stripper = _IMAGE_TYPES.get(media_type)
    if stripper is None:
        raise StripError(
            f"{name}: {media_type} is not an image type with a stripper", found=(name,)
        )
    sink = io.BytesIO()
    try:
        report = stripper.strip(io.BytesIO(data), sink)
    except StripError as exc:
        raise StripError(f"{name}: {exc.reason}", found=(name, *exc.found)) from exc
    return sink.getvalue(), tuple(f"{name} {field}" for field in report.removed)


def _copy(package: Package, emit: Emit) -> StripReport:
    family = _family(package)
    treatments = _plan(package, family)
    dropped = {n.casefold() for n, t in treatments.items() if t.kind is Kind.DROP}
    family.prepare(package, frozenset(dropped))
    removed = {f"{name} ({t.why})" for name, t in treatments.items() if t.kind is Kind.DROP}
    text = _Text()
    # ODF 1.3 Part 2 §3.3: the mimetype member comes first, stored.
    order = sorted(package.members, key=lambda i: treatments[i.filename].kind is not Kind.MIMETYPE)
    for info in order:
        kind = treatments[info.filename].kind
        if kind in (Kind.DROP, Kind.DIRECTORY):
            continue
        data = package.read(info)
        if kind is Kind.XML:
            on_text = text.part(info.filename) if family.counted(info.filename) else None
            rules, root = family.rules(info.filename), family.root(info.filename)
            result = rewrite(info.filename, data, rules, root=root, on_text=on_text)
            data = result.data
            removed.update(result.removed)
        elif kind is Kind.MEDIA:
            data, dropped_fields = _image(info.filename, data)
            removed.update(dropped_fields)
        emit(info.filename, data, kind is Kind.MIMETYPE)
    return StripReport(tuple(sorted(removed)), text.hexdigest(), CONTENT_KIND)


class OfficeStripper:
    """Sharing copies of DOCX, XLSX, PPTX, ODT, ODS and ODP: the package rewritten.

    Removed: document properties (OOXML core properties all, extended properties all but
    counts and flags, custom properties; ODF meta.xml all but the statistics), thumbnails,
    people parts, custom XML, printer settings, signatures, the authors (blanked) and times
    (dropped; a fixed time where ODF requires one) of comments and tracked changes, revision
    save IDs, document GUIDs, template and data-source paths, pictures named by their file
    path, settings.xml free text, XML comments and processing instructions, and every
    image's metadata (through the JPEG, PNG, TIFF and WebP strippers). Kept unchanged: all
    character data of the text parts (unlike mat2, nothing in the text is edited), and every
    other element and attribute under its original namespace prefix. Refused: encrypted,
    oversized or malformed packages, embedded objects, macros, ActiveX, fonts, linked files
    and hyperlinks to local paths, images of other types, fields that print a person's name
    or pull in a file, and every member not on the allowlists. ZIP members are written in
    their order (ODF's mimetype first, stored) with one fixed time. Needs a seekable source.
    The digest is SHA-256 over each text part's name and the SHA-256 of its character data
    (outside the elements emptied or replaced), in name order. On StripError the sink may
    hold part of a copy: discard it.
    """

    name = "office"
    version = "office/2"
    media_types = OOXML_TYPES | ODF_TYPES

    def __init__(self, *, limits: PackageLimits | None = None) -> None:
        self._limits = limits or PackageLimits()

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        package = Package(source, self._limits)
        writer = PackageWriter(sink)
        try:
            report = _copy(
                package, lambda name, data, stored: writer.add(name, data, stored=stored)
            )
        except BaseException:
            writer.abandon()
            raise
        finally:
            package.close()
        with zip_errors("writing"):
            writer.close()
        return report

    def content_digest(self, source: BinaryIO) -> str:
        package = Package(source, self._limits)
        try:
            return _copy(package, lambda name, data, stored: None).content_digest
        finally:
            package.close()
