"""HEIF/HEIC/AVIF sharing copies (ISO/IEC 23008-12): a PNG rendition of the primary image.

No well-kept library rewrites a HEIF file without its metadata item boxes while keeping the
coded image byte for byte, so the copy is a rendition: the primary image as libheif
(through pillow-heif; AVIF through Pillow's libavif) decodes it, with the file's rotation
and mirroring (irot, imir) applied so that it shows as the original does, written as PNG
(IHDR, iCCP for the ICC profile, IDAT, IEND: nothing else). Exif, XMP, thumbnails, depth
maps, auxiliary images (gain maps) and any other images of the file stay behind.
High-bit-depth images are rendered at 8 bits per channel, as most screens show them.

The content digest is over the decoded pixels (mode, size, then the raw rows): computed on
the original and read back from the PNG, equal when the copy shows exactly the original's
primary image as decoded.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any, BinaryIO

import pillow_heif
from PIL import Image, ImageOps

from custody.metadata.base import StripError, StripReport

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 120_000_000  # a 108 MP phone photo fits; decoded, 3 bytes each (memory bound)
MAX_BYTES = 512 * 1024 * 1024  # libheif reads the whole file: refuse what is not a photo
# zlib level 1: PNG is lossless at every level; higher ones took four times longer for a
# tenth less size on 12 MP photos.
PNG_LEVEL = 1
CONTENT_KIND = "decoded-pixels"
_MODES = frozenset({"RGB", "RGBA", "L", "LA"})


class HeifStripper:
    name = "heif"
    version = "heif-png/1"
    media_types = frozenset({"image/heic", "image/heif", "image/avif"})
    output_media_type = "image/png"
    digests_both_sides = True

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        image, removed = _decode(source)
        digest = _pixels_digest(image)
        icc = image.info.get("icc_profile") or None
        buffer = io.BytesIO()
        try:
            image.save(buffer, "PNG", compress_level=PNG_LEVEL, icc_profile=icc)
        except (OSError, ValueError) as exc:  # e.g. an ICC profile zlib cannot take
            raise StripError(f"the PNG rendition cannot be written: {exc}") from exc
        png = buffer.getvalue()
        if _pixels_digest(_open_png(io.BytesIO(png))) != digest:
            raise StripError("the PNG rendition does not hold the decoded pixels")
        sink.write(png)
        return StripReport(removed, digest, CONTENT_KIND)

    def content_digest(self, source: BinaryIO) -> str:
        """Of a HEIF or AVIF original, or of its PNG rendition."""
        head = source.read(len(PNG_SIGNATURE))
        source.seek(0)
        if head == PNG_SIGNATURE:
            return _pixels_digest(_open_png(source))
        return _pixels_digest(_decode(source)[0])


def _decode(source: BinaryIO) -> tuple[Image.Image, tuple[str, ...]]:
    """The primary image as shown, and the names of what a rendition leaves behind."""
    head = source.read(12)
    source.seek(0)
    if head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS:
        return _avif(source)
    heif = _open_heif(source)
    return _primary(heif), _removed(heif[heif.primary_index].info, images=len(heif))


_AVIF_BRANDS = (b"avif", b"avis")


def _avif(source: BinaryIO) -> tuple[Image.Image, tuple[str, ...]]:
    """AV1 in HEIF, which libheif here cannot decode: Pillow's own AVIF reader (libavif).

    Pillow reports the file's irot and imir as the Exif orientation (in place of any
    orientation the Exif block itself says), so transposing by it shows the image as the
    HEIF rules do."""
    data = _whole(source, "AVIF")
    try:
        image = Image.open(io.BytesIO(data), formats=["AVIF"])
        if getattr(image, "n_frames", 1) != 1:
            raise StripError("an AVIF image sequence (animation) has no PNG rendition here")
        if image.width * image.height > MAX_PIXELS:
            raise StripError(f"AVIF image of {image.width}x{image.height} pixels is too large")
        image.load()
        info = dict(image.info)
        shown = ImageOps.exif_transpose(image)
    except StripError:
        raise
    except Exception as exc:  # Pillow's AVIF decoder raises many kinds; any one: refuse
        raise StripError(f"AVIF cannot be decoded: {exc or type(exc).__name__}") from exc
    if shown.mode not in _MODES:
        raise StripError(f"AVIF image in mode {shown.mode} has no PNG rendition here")
    shown.info = {"icc_profile": info["icc_profile"]} if info.get("icc_profile") else {}
    return shown, _removed(info, images=1)


def _whole(source: BinaryIO, what: str) -> bytes:
    """The file's bytes: its decoder reads it whole, so its size is bounded first."""
    data = source.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise StripError(f"{what} file larger than {MAX_BYTES // 2**20} MiB")
    return data


def _open_heif(source: BinaryIO) -> Any:
    data = _whole(source, "HEIF")
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        primary = heif[heif.primary_index]  # a file without images fails here
    except Exception as exc:  # libheif's wrapper raises many kinds; any one means: refuse
        raise StripError(f"HEIF cannot be decoded: {exc or type(exc).__name__}") from exc
    if primary is None:
        raise StripError("HEIF has no primary image")
    return heif


def _primary(heif: Any) -> Image.Image:
    width, height = heif.size
    if width * height > MAX_PIXELS:
        raise StripError(f"HEIF image of {width}x{height} pixels is larger than allowed")
    try:
        image: Image.Image = heif.to_pillow()  # the primary image, irot and imir applied
        image.load()
    except Exception as exc:  # as in _open_heif: a decoder failure of any kind refuses
        raise StripError(f"HEIF image cannot be decoded: {exc or type(exc).__name__}") from exc
    if image.mode not in _MODES:
        raise StripError(f"HEIF image in mode {image.mode} has no PNG rendition here")
    return image


def _open_png(source: BinaryIO) -> Image.Image:
    try:
        image = Image.open(source, formats=["PNG"])
        image.load()
    except (ValueError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise StripError(f"PNG rendition cannot be read: {exc}") from exc
    return image


def _pixels_digest(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode("ascii"))
    digest.update(image.tobytes())
    return digest.hexdigest()


def _removed(info: Mapping[Any, Any], *, images: int) -> tuple[str, ...]:
    """Names of what the rendition leaves behind (never values): the metadata the decoder
    found beside the primary image (`info`), and the file's other images."""
    removed = ["HEIF container"]
    for key, name in (
        ("exif", "HEIF Exif"),
        ("xmp", "HEIF XMP"),
        ("thumbnails", "HEIF thumbnails"),
        ("depth_images", "HEIF depth images"),
        ("aux", "HEIF auxiliary images"),
        ("metadata", "HEIF other metadata items"),
    ):
        if info.get(key):
            removed.append(name)
    if images > 1:
        removed.append("HEIF other images")
    return tuple(removed)
