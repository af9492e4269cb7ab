"""Tests for custody.metadata.pdf_clean: what a copy loses, and what makes it refused."""

from __future__ import annotations

import io

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from custody.metadata.base import StripError
from custody.metadata.pdf import PdfStripper
from tests.custody.metadata.pdf_checks import AUTHOR, document
from tests.custody.metadata.strip_checks import strip_bytes

STRIPPER = PdfStripper()
# A certificate's subject, as DER holds it: the signer's name in a PrintableString.
CERTIFICATE = b"\x30\x82\x01\x0a\x31\x15\x30\x13\x06\x03\x55\x04\x03\x13\x0c" + AUTHOR.encode()


def _signature(**keys: object) -> Dictionary:
    return Dictionary(
        Filter=Name("/Adobe.PPKLite"), SubFilter=Name("/adbe.pkcs7.detached"),
        Contents=String(CERTIFICATE), ByteRange=Array([0, 10, 20, 30]), **keys,
    )  # fmt: skip


def test_a_widget_of_a_signature_field_two_levels_down_loses_its_appearance() -> None:
    """/FT is inherited through every level of the field tree (ISO 32000-2 §12.7.4.1)."""

    def build(pdf: pikepdf.Pdf) -> None:
        look = pdf.make_stream(b"BT (Signed by Jane Witness) Tj ET", Subtype=Name.Form)
        top = pdf.make_indirect(Dictionary(FT=Name.Sig, T=String("approval")))
        middle = pdf.make_indirect(Dictionary(T=String("clerk"), Parent=top, V=_signature()))
        widget = pdf.make_indirect(
            Dictionary(
                Type=Name.Annot, Subtype=Name.Widget, Rect=[0, 0, 50, 20], Parent=middle,
                AP=Dictionary(N=look), V=_signature(Type=Name.Sig),
            )
        )  # fmt: skip
        top.Kids, middle.Kids = Array([middle]), Array([widget])
        pdf.pages[0].Annots = Array([widget])
        pdf.Root.AcroForm = Dictionary(Fields=Array([top]))

    copy, report = strip_bytes(STRIPPER, document(build))
    assert {"signature", "signature appearance"} <= set(report.removed)
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        top = pdf.Root.AcroForm.Fields[0]
        assert str(top.Kids[0].T) == "clerk"
        assert "/V" not in top.Kids[0]
        assert "/AP" not in top.Kids[0].Kids[0]


@pytest.mark.parametrize(
    "signature",
    [
        _signature(Type=Name.Sig),
        _signature(),  # /Type is optional in a signature dictionary (§12.8.1 Table 255)
        _signature(Type=Name("/DocTimeStamp")),
        Dictionary(Type=Name.Sig, Contents=String(CERTIFICATE)),
    ],
)
def test_a_signature_dictionary_outside_a_signature_field_is_refused(
    signature: Dictionary,
) -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Extra = Dictionary(Approval=pdf.make_indirect(signature))

    with pytest.raises(StripError, match="a signature dictionary"):
        strip_bytes(STRIPPER, document(build))


def test_a_signature_under_a_field_of_no_type_is_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        field = Dictionary(T=String("approval"), V=_signature(Type=Name.Sig))
        pdf.Root.AcroForm = Dictionary(Fields=Array([pdf.make_indirect(field)]))

    with pytest.raises(StripError, match="a signature dictionary"):
        strip_bytes(STRIPPER, document(build))
