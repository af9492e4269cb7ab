"""Tests for custody.filenames: client filenames reduced to harmless display names."""

from __future__ import annotations

import unicodedata

import pytest

from custody.filenames import MAX_FILENAME_CHARS, sanitize_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("evidence/2026/photo.jpg", "photo.jpg"),
        ("C:\\Users\\field\\DCIM\\IMG_0001.JPG", "IMG_0001.JPG"),
        ("\\\\server\\share\\statement.pdf", "statement.pdf"),
        ("..\\..\\windows\\system32\\drivers\\etc\\hosts", "hosts"),
        ("mixed/dirs\\and/back\\slashes.txt", "slashes.txt"),
        ("report.pdf", "report.pdf"),
        ("  report.pdf  ", "report.pdf"),
        ("фото свидетеля 1.jpg", "фото свидетеля 1.jpg"),
    ],
)
def test_keeps_only_the_last_path_component(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # RIGHT-TO-LEFT OVERRIDE hides ".exe"
        ("a\u202db\u202ac\u2066d\u2069.txt", "abcd.txt"),  # other overrides and isolates
        ("name\u200e.jpg", "name.jpg"),  # LEFT-TO-RIGHT MARK
        ("line\nbreak\r.txt", "linebreak.txt"),
        ("nul\x00byte.jpg", "nulbyte.jpg"),
        ("\x1b[31mred.txt", "[31mred.txt"),
        ("tab\there\x7f.txt", "tabhere.txt"),
        ("c1\x85control.txt", "c1control.txt"),
    ],
)
def test_removes_control_and_bidi_characters(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    "name",
    [None, "", ".", "..", "   ", "dir/", "../", "..\\", "a/..", "C:\\temp\\.", "\u202e", "\x00\n"],
)
def test_nothing_left_gives_none(name: str | None) -> None:
    assert sanitize_filename(name) is None


def test_long_names_are_cut_to_the_cap() -> None:
    assert MAX_FILENAME_CHARS == 255
    assert sanitize_filename("a" * 300 + ".jpg") == "a" * MAX_FILENAME_CHARS
    assert sanitize_filename("b" * MAX_FILENAME_CHARS) == "b" * MAX_FILENAME_CHARS


def test_names_are_nfc_normalised() -> None:
    decomposed, composed = "Cafe\u0301 Mu\u0308ller.jpg", "Caf\u00e9 M\u00fcller.jpg"
    assert sanitize_filename(decomposed) == composed
    assert sanitize_filename(unicodedata.normalize("NFD", composed)) == composed
    assert sanitize_filename(composed) == composed


def test_the_cap_counts_normalised_characters() -> None:
    # 200 decomposed "é" are 400 code points but 200 characters once composed.
    assert sanitize_filename("e\u0301" * 200) == "\u00e9" * 200
