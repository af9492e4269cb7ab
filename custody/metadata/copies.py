"""Sharing copies: choose the stripper, make the copy, and refuse it unless it proves clean.

Fail closed (issue: "Before a copy is released it is re-parsed by the extractors and scanned
for the original's sensitive values as raw bytes"): a copy is returned only when the
extractors find nothing sensitive in it, none of the original's sensitive values occur in
its bytes, and its content digest equals the original's.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from custody.metadata.aiff import AiffStripper
from custody.metadata.base import (
    Metadata,
    StripError,
    Stripper,
    StripReport,
    UnsupportedFormatError,
    digests_both_sides,
)
from custody.metadata.extractors.kinds import KEPT_AS_CONTENT, classify
from custody.metadata.flac import FlacStripper
from custody.metadata.gif import GifStripper
from custody.metadata.heif import HeifStripper
from custody.metadata.jpeg import JpegStripper
from custody.metadata.mp3 import Mp3Stripper
from custody.metadata.mp4audio import Mp4AudioStripper
from custody.metadata.office import OfficeStripper
from custody.metadata.ogg import OggStripper
from custody.metadata.pdf import PdfStripper
from custody.metadata.png import PngStripper
from custody.metadata.riff_audio import WavStripper
from custody.metadata.tiff import TiffStripper
from custody.metadata.webp import WebpStripper

PROFILE = "share"
PROFILE_VERSION = "share/1"
MIN_SCAN_CHARS = 4  # shorter values ("1", "ab") occur by chance in any binary file
SCAN_WINDOW = 1024 * 1024
Extract = Callable[[Path, str], Metadata]


def _registry(strippers: Iterable[Stripper]) -> dict[str, Stripper]:
    return {media_type: s for s in strippers for media_type in s.media_types}


STRIPPERS: dict[str, Stripper] = _registry(
    [
        JpegStripper(),
        PngStripper(),
        WebpStripper(),
        GifStripper(),
        TiffStripper(),
        Mp3Stripper(),
        FlacStripper(),
        OggStripper(),
        Mp4AudioStripper(),
        WavStripper(),
        AiffStripper(),
        OfficeStripper(),
        PdfStripper(),
        HeifStripper(),
    ]
)


def register(stripper: Stripper) -> None:
    """Add a stripper for its media types (PDF and office documents register here)."""
    STRIPPERS.update(_registry([stripper]))


def supported_media_types() -> tuple[str, ...]:
    return tuple(sorted(STRIPPERS))


def stripper_for(media_type: str) -> Stripper:
    base = media_type.split(";", maxsplit=1)[0].strip()
    stripper = STRIPPERS.get(media_type) or STRIPPERS.get(base)
    if stripper is None:
        raise UnsupportedFormatError(media_type, supported_media_types())
    return stripper


def tool_version(stripper: Stripper) -> str:
    return stripper.version if "/" in stripper.version else f"{stripper.name}/{stripper.version}"


def copy_media_type(stripper: Stripper, media_type: str) -> str:
    """What the copy is: the original's type, or a rendition's (HEIF copies are PNG)."""
    rendition: str | None = getattr(stripper, "output_media_type", None)
    return rendition or media_type


@dataclass(frozen=True, slots=True)
class Copy:
    report: StripReport
    stripper: str  # name/version
    original_content_digest: str
    sha256: str
    size: int
    media_type: str  # the copy's own: the original's, but for a rendition


def make_copy(
    original: Path, media_type: str, copy: Path, *, original_metadata: Metadata, extract: Extract
) -> Copy:
    """Write the sharing copy of `original` to `copy`, checked; StripError if not clean."""
    stripper = stripper_for(media_type)
    with original.open("rb") as source, copy.open("wb") as sink:
        report = stripper.strip(source, sink)
    # The report's digest is of the original's content, as the stripper read it to copy it.
    original_digest = report.content_digest
    if not digests_both_sides(stripper):
        # Read back from the copy's own bytes, as a court would: what was written, not what
        # the stripper meant to write.
        with copy.open("rb") as written:
            if stripper.content_digest(written) != original_digest:
                raise StripError(
                    "the copy's content differs from the original's", found=("content",)
                )
    made_as = copy_media_type(stripper, media_type)
    _check_extracted(extract(copy, made_as), original_metadata)
    _check_bytes(copy, original_metadata.sensitive_values)
    sha256, size = _sha256(copy)
    return Copy(report, tool_version(stripper), original_digest, sha256, size, made_as)


def _check_extracted(metadata: Metadata, original: Metadata) -> None:
    if metadata.errors:
        raise StripError(
            "the copy cannot be re-read with certainty: " + "; ".join(metadata.errors[:3]),
            found=("unparseable",),
        )
    if not metadata.sensitive.any:
        return
    left = [
        f
        for f in metadata.sensitive.fields
        if classify(f) not in KEPT_AS_CONTENT and not _regenerated(f, metadata, original)
    ]
    if left or not metadata.sensitive.fields:
        raise StripError("sensitive metadata remains in the copy", found=tuple(left))


# Identifiers a format requires and the stripper replaces with a fresh value (ISO 32000-1
# §14.4: a PDF file identifier); one that differs from the original's links nothing.
REGENERATED = frozenset({"PDF:ID"})


def _regenerated(field: str, copy: Metadata, original: Metadata) -> bool:
    return field in REGENERATED and copy.fields.get(field) != original.fields.get(field)


def _check_bytes(copy: Path, values: Iterable[str]) -> None:
    needles = value_needles(values)
    if not needles:
        return
    longest = max(len(n) for n in needles)
    tail = b""
    with copy.open("rb") as stream:
        while block := stream.read(SCAN_WINDOW):
            window = tail + block
            for needle, name in needles.items():
                if needle in window:
                    raise StripError(
                        "a value from the original's metadata occurs in the copy's bytes",
                        found=(name,),
                    )
            tail = window[-(longest - 1) :] if longest > 1 else b""


def value_needles(values: Iterable[str]) -> dict[bytes, str]:
    """Each value as the bytes it would appear as: UTF-8, both UTF-16 orders, and Latin-1
    where it can hold the value (a Cyrillic or Thai name, its letters dropped, would be a
    space or nothing, found in any copy)."""
    needles: dict[bytes, str] = {}
    for index, value in enumerate(values):
        text = value.strip().strip("\x00")
        if len(text) < MIN_SCAN_CHARS:
            continue
        for encoding in ("utf-8", "utf-16-le", "utf-16-be", "latin-1"):
            # "ignore" drops only lone surrogates from the Unicode encodings.
            with contextlib.suppress(UnicodeEncodeError):
                errors = "strict" if encoding == "latin-1" else "ignore"
                needle = text.encode(encoding, errors)
                if len(needle) >= MIN_SCAN_CHARS:
                    needles.setdefault(needle, f"value #{index} ({encoding})")
    return needles


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(SCAN_WINDOW):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
