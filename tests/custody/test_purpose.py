"""Keyed purpose commitments: they open with the text and its key, and hide the text without."""

from __future__ import annotations

import hashlib
import hmac
import subprocess

import pytest

from custody.errors import EventError
from custody.purpose import PURPOSE_KEY_BYTES, commit_purpose, purpose_opens

TEXT = "Submission to the ICC Office of the Prosecutor"
KEY = bytes(range(PURPOSE_KEY_BYTES))


def test_the_commitment_is_the_rfc_2104_hmac_sha256_of_the_utf8_text() -> None:
    expected = hmac.new(KEY, TEXT.encode("utf-8"), hashlib.sha256).hexdigest()
    assert commit_purpose(TEXT, KEY) == expected
    assert (
        commit_purpose("Überstellung an das Gericht", KEY)
        == hmac.new(KEY, "Überstellung an das Gericht".encode(), hashlib.sha256).hexdigest()
    )


def test_each_key_gives_another_commitment_and_none_is_the_plain_hash() -> None:
    other = bytes(reversed(KEY))
    assert commit_purpose(TEXT, KEY) != commit_purpose(TEXT, other)
    assert commit_purpose(TEXT, KEY) != hashlib.sha256(TEXT.encode()).hexdigest()


def test_a_commitment_opens_with_its_text_and_key_only() -> None:
    committed = {"kind": "original", "purpose_hmac_sha256": commit_purpose(TEXT, KEY)}
    assert purpose_opens(committed, TEXT, KEY)
    assert not purpose_opens(committed, TEXT + ".", KEY)
    assert not purpose_opens(committed, TEXT, bytes(PURPOSE_KEY_BYTES))
    assert not purpose_opens(committed, TEXT, None)
    assert not purpose_opens(committed, TEXT, KEY[:16])


def test_entries_from_before_keys_open_with_the_plain_sha256() -> None:
    committed = {"purpose_sha256": hashlib.sha256(TEXT.encode()).hexdigest()}
    assert purpose_opens(committed, TEXT, None)
    assert purpose_opens(committed, TEXT, KEY)  # a key the entry does not use changes nothing
    assert not purpose_opens(committed, "another purpose", None)
    assert not purpose_opens({}, TEXT, KEY)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_keys_of_another_length_are_refused(length: int) -> None:
    with pytest.raises(EventError, match="32 bytes"):
        commit_purpose(TEXT, bytes(length))


def test_a_court_recomputes_it_with_openssl() -> None:
    """Opening a commitment needs no tool of ours: the text, the key and any HMAC tool."""
    text = "Übergabe an das Gericht, Az. 4-117/2026"
    done = subprocess.run(
        ["openssl", "mac", "-digest", "SHA256", "-macopt", f"hexkey:{KEY.hex()}", "HMAC"],
        input=text.encode("utf-8"),
        capture_output=True,
        check=True,
    )
    assert done.stdout.decode().strip().lower() == commit_purpose(text, KEY)
