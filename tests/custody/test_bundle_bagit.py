"""BagIt text: manifests and bag-info round-trip, and malformed text is refused by name."""

from __future__ import annotations

import pytest

from custody.bundle.bagit import (
    decode_path,
    encode_path,
    format_bag_info,
    format_manifest,
    parse_bag_info,
    parse_manifest,
    payload_oxum,
)
from custody.errors import BundleError


def test_manifest_lines_are_sha256sum_compatible_and_round_trip() -> None:
    lines = [("data/001-photo 1.jpg", "ab" * 32), ("data/002-Заявление.pdf", "cd" * 32)]
    text = format_manifest(lines)
    assert text.decode().splitlines()[0] == f"{'ab' * 32}  data/001-photo 1.jpg"
    assert parse_manifest(text, name="manifest-sha256.txt") == dict(lines)


def test_manifest_paths_percent_encode_only_cr_lf_and_percent() -> None:
    # RFC 8493 §2.1.3
    assert encode_path("a%b\nc\rd e") == "a%25b%0Ac%0Dd e"
    assert decode_path("a%25b%0Ac%0Dd e") == "a%b\nc\rd e"
    text = format_manifest([("data/100%\n.txt", "00" * 32)])
    assert parse_manifest(text, name="m") == {"data/100%\n.txt": "00" * 32}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"nothex  data/a\n", "line 1"),
        (b"abcd\n", "line 1"),
        (b"ab  data/a\nab  data/a\n", "twice"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_manifests_are_refused_by_name(text: bytes, reason: str) -> None:
    with pytest.raises(BundleError, match=reason) as caught:
        parse_manifest(text, name="manifest-sha512.txt")
    assert "manifest-sha512.txt" in str(caught.value)


def test_bag_info_folds_long_values_and_reads_them_back() -> None:
    fields = [("Source-Organization", "Legal Aid"), ("External-Description", "line one\nline two")]
    text = format_bag_info(fields)
    assert text == b"Source-Organization: Legal Aid\nExternal-Description: line one\n  line two\n"
    assert parse_bag_info(text) == fields
    with pytest.raises(BundleError, match="label"):
        format_bag_info([("Bad: label", "x")])
    with pytest.raises(BundleError, match="not 'Label: value'"):
        parse_bag_info(b"no colon here\n")


def test_payload_oxum_is_octets_dot_count() -> None:
    assert payload_oxum(12345, 3) == "12345.3"
