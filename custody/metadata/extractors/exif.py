"""EXIF (CIPA DC-008) of JPEG, TIFF, HEIF, WebP and PNG eXIf, read with exifread."""

from __future__ import annotations

import warnings
from typing import BinaryIO

import exifread
from exifread.core.ifd_tag import IfdTag
from exifread.tags.fields import FieldType

from custody.metadata.extractors import iptc, makernote, xmp
from custody.metadata.extractors.collector import Collector

# Tags whose values exifread decodes from bytes to text (Windows XP tags are UTF-16LE).
_TEXT_TAGS = frozenset({"XPAuthor", "XPComment", "XPTitle", "XPSubject", "XPKeywords"})
# TIFF 6.0 tags that embed other metadata blocks: XMP (700), IPTC-NAA (33723), Photoshop
# image resources (34377). exifread drops values of 1,000 items or more, so read them here.
_XMP_TAG, _IPTC_TAG, _IRB_TAG = 0x02BC, 0x83BB, 0x8649
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")  # TIFF 6.0 §2: byte order, then 42


def extract_exif(fh: BinaryIO, out: Collector) -> None:
    """EXIF fields as "EXIF:<IFD> <Tag>", including maker notes (where serials hide)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # details=True decodes maker notes: Canon, Nikon and Olympus keep the body's serial
        # number and the owner's name there. It costs a few milliseconds per image.
        tags = exifread.process_file(fh, details=True, extract_thumbnail=True)
    for key, tag in tags.items():
        name = f"EXIF:{key.strip()}"
        if isinstance(tag, IfdTag):
            if isinstance(tag.values, list) and not tag.values:
                # exifread drops arrays of 1,000 items or more: say how large the field is.
                if tag.field_length > 4:
                    out.add(name, f"<{tag.field_length} bytes>", literal=False)
                continue
            if tag.tag in (_XMP_TAG, _IPTC_TAG, _IRB_TAG):
                _embedded_block(fh, tag, out)
                continue
            # Numbers and rationals print as text that never appears in the file's bytes.
            literal = tag.field_type == FieldType.ASCII or key.split()[-1] in _TEXT_TAGS
            out.add(name, tag.printable, literal=literal)
        elif isinstance(tag, bytes):  # JPEGThumbnail, TIFFThumbnail: the image itself
            out.add(name, f"<{len(tag)} bytes>", literal=False)
        else:
            out.add(name, tag, literal=False)
    note, make = tags.get("EXIF MakerNote"), tags.get("Image Make")
    if isinstance(note, IfdTag) and isinstance(make, IfdTag) and isinstance(note.values, list):
        data = bytes(value & 0xFF for value in note.values if isinstance(value, int))
        makernote.parse_serials(data, note.field_offset, make.printable, out)


def _embedded_block(fh: BinaryIO, tag: IfdTag, out: Collector) -> None:
    """Parse an XMP, IPTC or IRB block stored in a TIFF tag (offsets from the file start)."""
    fh.seek(0)
    if fh.read(4) not in TIFF_MAGIC or tag.field_length > out.limits.xmp_packet:
        out.add(f"EXIF:Image Tag 0x{tag.tag:04X}", f"<{tag.field_length} bytes>", literal=False)
        return
    fh.seek(tag.field_offset)
    data = fh.read(tag.field_length)
    if tag.tag == _XMP_TAG:
        xmp.parse_packet(data, out)
    elif tag.tag == _IPTC_TAG:
        iptc.parse_iim(data, out)
    else:
        iptc.parse_irb(data, out)
