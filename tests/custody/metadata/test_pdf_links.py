"""Tests for custody.metadata.pdf_links: links and file specifications into a file system."""

from __future__ import annotations

import io
from collections.abc import Callable

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from custody.metadata.base import StripError
from custody.metadata.pdf import PdfStripper
from tests.custody.metadata.pdf_checks import document
from tests.custody.metadata.strip_checks import strip_bytes

STRIPPER = PdfStripper()
HOME = "/home/jwitness/cases/statement.pdf"
WINDOWS = r"C:\Users\jwitness\Documents\statement.pdf"


def _linked(action: Dictionary) -> Callable[[pikepdf.Pdf], None]:
    """A link annotation on the page that runs `action`."""

    def build(pdf: pikepdf.Pdf) -> None:
        link = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=[0, 0, 50, 20], A=action)
        pdf.pages[0].Annots = Array([pdf.make_indirect(link)])

    return build


def _filespec(**paths: str) -> Dictionary:
    return Dictionary(Type=Name.Filespec, **{key: String(path) for key, path in paths.items()})


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (_linked(Dictionary(S=Name.Launch, F=String("statement.pdf"))), "a Launch action"),
        (_linked(Dictionary(S=Name.Launch, Win=Dictionary(F=String("calc.exe")))), "Launch"),
        (_linked(Dictionary(S=Name.GoToR, F=String(HOME), D=Array([0]))), "/F names a local"),
        (_linked(Dictionary(S=Name.GoToR, F=_filespec(F=WINDOWS), D=Array([0]))), "/F names"),
        (_linked(Dictionary(S=Name.GoToR, F=_filespec(UF=WINDOWS), D=Array([0]))), "/UF names"),
        (_linked(Dictionary(S=Name.GoToR, F=_filespec(DOS=r"\\srv\jw\a.pdf"))), "/DOS names"),
        (_linked(Dictionary(S=Name.GoToR, F=_filespec(Unix="../../jw/a.pdf"))), "/Unix names"),
        (_linked(Dictionary(S=Name.URI, URI=String("file:///C:/Users/jwitness/a"))), "/URI"),
        (_linked(Dictionary(S=Name.URI, URI=String(r"\\fileserver\jwitness\a"))), "/URI"),
        (lambda pdf: setattr(pdf.Root, "URI", Dictionary(Base=String("file:///home/"))), "/Base"),
        (
            lambda pdf: setattr(pdf.Root, "OpenAction", Dictionary(S=Name.GoToR, F=String(HOME))),
            "/F names",
        ),
    ],
)  # fmt: skip
def test_links_to_local_files_are_refused(
    build: Callable[[pikepdf.Pdf], None], reason: str
) -> None:
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, document(build))


def test_an_external_stream_is_refused() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.Extra = pdf.make_stream(b"", F=String(WINDOWS))  # §7.3.8.2: data elsewhere

    with pytest.raises(StripError, match="/F names a local"):
        strip_bytes(STRIPPER, document(build))


@pytest.mark.parametrize(
    "action",
    [
        Dictionary(S=Name.URI, URI=String("https://example.org/report")),
        Dictionary(S=Name.GoToR, F=String("annex.pdf"), D=Array([0])),
        Dictionary(S=Name.GoToR, F=_filespec(F="annex/photos.pdf", UF="annex/photos.pdf")),
    ],
)
def test_web_links_and_files_beside_the_document_are_kept(action: Dictionary) -> None:
    copy, _ = strip_bytes(STRIPPER, document(_linked(action)))
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        assert pdf.pages[0].Annots[0].A.S == action.S
