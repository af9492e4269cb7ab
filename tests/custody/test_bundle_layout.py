"""Where things live in a bag: payload names that are safe everywhere, numbered in order."""

from __future__ import annotations

from custody.bundle.layout import (
    number_width,
    payload_name,
    shared_filename,
    unlisted_tag_files,
)


def test_payload_names_keep_the_filename_but_nothing_dangerous() -> None:
    assert payload_name(1, 3, "IMG_0001.JPG", ".jpg") == "data/001-IMG_0001.JPG"
    assert payload_name(12, 4, "Заявление №5.pdf", ".pdf") == "data/0012-Заявление _5.pdf"
    assert payload_name(3, 3, 'a/b\\c:d*e?"<>|.txt', ".txt") == "data/003-a_b_c_d_e_____.txt"
    assert payload_name(4, 3, "100%\n.txt", ".txt") == "data/004-100__.txt"
    assert payload_name(5, 3, None, ".jpg") == "data/005-exhibit.jpg"
    assert payload_name(6, 3, " .. ", ".bin") == "data/006-exhibit.bin"


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = payload_name(7, 3, "x" * 300 + ".jpeg", ".jpg")
    assert name.endswith("x.jpeg")
    assert len(name.removeprefix("data/007-")) == 120


def test_numbers_sort_in_exhibit_order() -> None:
    assert number_width(9) == 3
    assert number_width(1000) == 4
    names = [payload_name(n, number_width(1000), "f", ".bin") for n in (2, 10, 999, 1000)]
    assert names == sorted(names)


def test_shared_copies_are_marked_before_the_extension() -> None:
    assert shared_filename("site.jpg") == "site.shared.jpg"
    assert shared_filename("README") == "README.shared"
    # A rendition in another format takes its own extension.
    assert shared_filename("IMG_5195.HEIC", ".png") == "IMG_5195.shared.png"
    assert shared_filename("scan", ".png") == "scan.shared.png"
    assert shared_filename(None) is None


def test_tag_manifests_and_signatures_are_the_only_unlisted_tag_files() -> None:
    assert unlisted_tag_files() == {
        "tagmanifest-sha256.txt",
        "tagmanifest-sha512.txt",
        "tagmanifest-sha256.txt.sig",
        "tagmanifest-sha512.txt.sig",
    }
