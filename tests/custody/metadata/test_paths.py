"""Tests for custody.metadata.paths: which link targets name a place in a file system."""

from __future__ import annotations

import pytest

from custody.metadata.paths import local_path


@pytest.mark.parametrize(
    "target",
    [
        "file:///C:/Users/jwitness/plates.jpg",
        "FILE://fileserver/share/notes.txt",
        " file:notes.txt",
        "smb://fileserver/jwitness/notes",
        r"\\fileserver\jwitness\notes",
        "//fileserver/jwitness/notes",
        r"C:\Users\jwitness\Documents\statement.pdf",
        "c:/Users/jwitness/statement.pdf",
        r"\Users\jwitness\statement.pdf",
        "/home/jwitness/statement.pdf",
        "/C/Users/jwitness/statement.pdf",  # ISO 32000-2 §7.11.2: a DOS path, PDF's way
        "~/statement.pdf",
        "~jwitness/statement.pdf",
        r"%USERPROFILE%\Desktop\statement.pdf",
        "../../jwitness/statement.pdf",
        r"evidence\..\..\statement.pdf",
    ],
)
def test_paths_into_a_file_system_are_local(target: str) -> None:
    assert local_path(target)


@pytest.mark.parametrize(
    "target",
    [
        "https://example.org/report",
        "mailto:desk@example.org",
        "statement.pdf",
        "annex/photos.pdf",
        "#page=2",
        "",
        "..statement.pdf",
    ],
)
def test_web_links_and_names_inside_the_folder_are_not(target: str) -> None:
    assert not local_path(target)
