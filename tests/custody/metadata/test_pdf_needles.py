"""Tests for custody.metadata.pdf_needles: the original's values the copy is searched for."""

from __future__ import annotations

import pikepdf
import pytest
from pikepdf import Name, String

from custody.metadata.base import StripError
from custody.metadata.pdf import PdfStripper
from custody.metadata.pdf_needles import collect
from tests.custody.metadata.pdf_checks import AUTHOR, compressed, document, xmp_packet
from tests.custody.metadata.strip_checks import strip_bytes

# XMP packets may be UTF-8, UTF-16 or UTF-32 (ISO 16684-1 §7.3); the byte order mark sits in
# the xpacket begin attribute, so a UTF-16 packet does not start with one.
ENCODINGS = ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"]


def _encoded(encoding: str) -> bytes:
    return xmp_packet().decode().encode(encoding)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_values_of_an_xmp_packet_in_any_unicode_encoding_are_collected(encoding: str) -> None:
    with pikepdf.new() as pdf:
        pdf.Root.Metadata = pdf.make_stream(_encoded(encoding), Type=Name.Metadata)
        labels = {item.label for item in collect(pdf)}
    assert {"XMP creator", "XMP documentid"} <= labels


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_copy_keeping_a_value_of_such_a_packet_is_refused(encoding: str) -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Metadata = compressed(pdf, _encoded(encoding), Type=Name.Metadata)
        pdf.Root.Extra = String(f"Signed: {AUTHOR}")

    with pytest.raises(StripError, match="values of the original") as refused:
        strip_bytes(PdfStripper(), document(build))
    assert "XMP creator in object" in " ".join(refused.value.found)
