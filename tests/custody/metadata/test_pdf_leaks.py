"""Tests for custody.metadata.pdf_leaks: where a copy still holds what the original did."""

from __future__ import annotations

import pikepdf
import pytest

from custody.metadata.base import StripError
from custody.metadata.pdf import PdfStripper
from tests.custody.metadata.pdf_checks import compressed, document, xmp_packet
from tests.custody.metadata.strip_checks import strip_bytes


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"]
)
def test_an_xmp_packet_in_any_unicode_encoding_under_an_unknown_key_is_refused(
    encoding: str,
) -> None:
    packet = xmp_packet("Someone Else").decode().encode(encoding)

    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Extra = compressed(pdf, packet)

    with pytest.raises(StripError, match="values of the original") as refused:
        strip_bytes(PdfStripper(), document(build))
    assert any(place.startswith("an XMP packet in") for place in refused.value.found)
