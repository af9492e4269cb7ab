"""Signed notes: Go sumdb/note's own test vectors, tampering, keys and malformed notes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.errors import NoteError, SignatureError, UnknownKeyError
from custody.note import (
    MAX_SIGNATURES,
    Signer,
    Verifier,
    decode_base64,
    format_signer,
    format_vkey,
    generate_signer,
    is_valid_name,
    key_id,
    open_note,
    parse_signer,
    parse_vkey,
    sign_note,
)

# The vectors of golang.org/x/mod/sumdb/note's note_test.go (TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n"


def peter() -> Signer:
    return parse_signer(PETER_SKEY)


def note(*signature_lines: str) -> bytes:
    return (TEXT + "\n" + "".join(signature_lines)).encode()


# Known answers: byte compatibility with Go.


def test_sign_matches_go_byte_for_byte() -> None:
    assert sign_note(TEXT, [peter()]) == note(PETER_SIG)


def test_key_id_and_keys_match_go() -> None:
    signer = peter()
    assert signer.key_id == 0xC74F20A3
    assert key_id("PeterNeumann", signer.public_key) == 0xC74F20A3
    assert format_vkey(signer.verifier()) == PETER_VKEY
    assert format_signer(signer) == PETER_SKEY
    assert parse_vkey(PETER_VKEY) == signer.verifier()


def test_open_verifies_known_and_keeps_unknown_signatures() -> None:
    opened = open_note(note(PETER_SIG, ENOCH_SIG), [parse_vkey(PETER_VKEY)])
    assert opened.text == TEXT
    assert [(s.name, s.key_id) for s in opened.signatures] == [("PeterNeumann", 0xC74F20A3)]
    assert [(s.name, s.key_id) for s in opened.unverified] == [("EnochRoot", 0xAF0CFE78)]
    assert opened.signatures[0].line() == PETER_SIG


def test_open_verifies_every_known_key() -> None:
    verifiers = [parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)]
    opened = open_note(note(PETER_SIG, ENOCH_SIG), verifiers)
    assert [s.name for s in opened.signatures] == ["PeterNeumann", "EnochRoot"]
    assert opened.unverified == ()


def test_a_note_without_a_known_signature_is_rejected() -> None:
    with pytest.raises(UnknownKeyError) as caught:
        open_note(note(PETER_SIG, ENOCH_SIG), [])
    assert caught.value.keys == ("PeterNeumann+c74f20a3", "EnochRoot+af0cfe78")


def test_a_bad_signature_by_a_known_key_rejects_the_note() -> None:
    # TestOpen's "Invalid signature" case: four characters spliced into the signature.
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError) as caught:
        open_note(note(bad), [parse_vkey(PETER_VKEY)])
    assert (caught.value.name, caught.value.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert str(caught.value) == "invalid signature for key PeterNeumann+c74f20a3"


def test_a_bad_known_signature_rejects_even_beside_a_good_one() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError):
        open_note(note(PETER_SIG, bad), [parse_vkey(PETER_VKEY)])


def test_repeated_lines_count_once() -> None:
    opened = open_note(note(PETER_SIG, PETER_SIG, ENOCH_SIG, ENOCH_SIG), [parse_vkey(PETER_VKEY)])
    assert len(opened.signatures) == 1
    assert len(opened.unverified) == 1


def test_signature_count_limit() -> None:
    verifiers = [parse_vkey(PETER_VKEY)]
    # signed-note: verifiers MUST accept at least 16; like Go we refuse more than 100.
    assert open_note(note(*[ENOCH_SIG] * 15, PETER_SIG), verifiers).text == TEXT
    assert open_note(note(*[PETER_SIG] * MAX_SIGNATURES), verifiers).text == TEXT
    with pytest.raises(NoteError, match="at most"):
        open_note(note(*[PETER_SIG] * (MAX_SIGNATURES + 1)), verifiers)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(TEXT, id="no-signatures"),
        pytest.param(TEXT + "\n", id="empty-signature-block"),
        pytest.param(TEXT + "\n" + PETER_SIG[:-1], id="no-final-newline"),
        pytest.param("\x01" + TEXT + "\n" + PETER_SIG, id="control-character"),
        pytest.param("\r" + TEXT + "\n" + PETER_SIG, id="carriage-return"),
        pytest.param(TEXT + "\n" + "\u2014 Bad Name " + PETER_B64 + "\n", id="space-in-name"),
        pytest.param(TEXT + "\n" + "\u2014 Bad+Name " + PETER_B64 + "\n", id="plus-in-name"),
        pytest.param(TEXT + "\n" + PETER_SIG + "Unexpected line.\n", id="stray-line"),
        pytest.param(TEXT + "\n" + "- PeterNeumann " + PETER_B64 + "\n", id="hyphen-not-em-dash"),
        pytest.param(TEXT + "\n" + "\u2014 PeterNeumann\n", id="no-signature"),
        pytest.param(TEXT + "\n" + "\u2014 PeterNeumann AAAAAA==\n", id="signature-too-short"),
        pytest.param(TEXT + "\n" + "\u2014 PeterNeumann x08g\n", id="only-a-key-id"),
        pytest.param(TEXT + "\n" + "\u2014  " + PETER_B64 + "\n", id="empty-name"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("=", ""), id="unpadded-base64"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=", "AN="), id="noncanonical-base64"),
        pytest.param(TEXT + "\n" + PETER_SIG + "\n", id="trailing-blank-line"),
    ],
)
def test_malformed_notes_are_rejected(data: str) -> None:
    with pytest.raises(NoteError) as caught:
        open_note(data.encode(), [parse_vkey(PETER_VKEY)])
    assert type(caught.value) is NoteError  # malformed, not merely unverified


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + note(PETER_SIG), [parse_vkey(PETER_VKEY)])


def flips(data: bytes) -> list[bytes]:
    """Every way to change one bit of `data`."""
    out = []
    for position in range(len(data)):
        for bit in range(8):
            tampered = bytearray(data)
            tampered[position] ^= 1 << bit
            out.append(bytes(tampered))
    return out


def test_every_changed_bit_is_detected() -> None:
    verifiers = [parse_vkey(PETER_VKEY)]
    for tampered in flips(note(PETER_SIG)):
        with pytest.raises(NoteError):
            open_note(tampered, verifiers)


def test_every_changed_bit_loses_a_signature_or_the_note() -> None:
    # Changing a signer's name or id turns its line into an unknown key's: ignored, per spec.
    verifiers = [parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)]
    original = open_note(note(PETER_SIG, ENOCH_SIG), verifiers)
    for tampered in flips(note(PETER_SIG, ENOCH_SIG)):
        try:
            opened = open_note(tampered, verifiers)
        except NoteError:
            continue
        assert opened.text == original.text
        assert len(opened.signatures) == 1


def test_same_name_other_key_is_an_unknown_key() -> None:
    # A rotated key shares the name but not the id: its signature is ignored, not an error.
    rotated = generate_signer("PeterNeumann")
    opened = open_note(sign_note(TEXT, [rotated, peter()]), [parse_vkey(PETER_VKEY)])
    assert [s.key_id for s in opened.unverified] == [rotated.key_id]
    assert [s.key_id for s in opened.signatures] == [0xC74F20A3]


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(UnknownKeyError):
        open_note(sign_note(TEXT, [generate_signer("someone")]), [parse_vkey(PETER_VKEY)])


def test_colliding_verifiers_are_ambiguous() -> None:
    # Two different public keys whose ids collide under one name (found by birthday search).
    first = Verifier("EnochRoot", (39073).to_bytes(32, "big"))
    second = Verifier("EnochRoot", (83606).to_bytes(32, "big"))
    assert first.key_id == second.key_id == 0xE9255EDE
    with pytest.raises(NoteError, match="ambiguous key EnochRoot\\+e9255ede"):
        open_note(note(PETER_SIG), [first, second])
    # The same verifier twice is not ambiguous.
    assert open_note(note(PETER_SIG), [parse_vkey(PETER_VKEY)] * 2).text == TEXT


# Signing.


@pytest.mark.parametrize(
    "text",
    ["no newline", "", "tab\there\n", "bell\x07\n", "lone \udc80 surrogate\n", "cr\r\n"],
)
def test_sign_rejects_text_the_spec_forbids(text: str) -> None:
    with pytest.raises(NoteError):
        sign_note(text, [peter()])


def test_sign_needs_a_signer() -> None:
    with pytest.raises(NoteError, match="at least one"):
        sign_note(TEXT, [])


def test_sign_with_several_keys_in_order() -> None:
    witness = generate_signer("witness.example/w1")
    data = sign_note(TEXT, [peter(), witness])
    assert data.startswith(note(PETER_SIG))
    opened = open_note(data, [witness.verifier()])
    assert [s.name for s in opened.signatures] == ["witness.example/w1"]


def test_text_may_contain_blank_lines() -> None:
    text = "first\n\nsecond\n\n"
    opened = open_note(sign_note(text, [peter()]), [parse_vkey(PETER_VKEY)])
    assert opened.text == text


@given(st.text(st.characters(blacklist_categories=["Cs", "Cc"])))
def test_sign_then_open_round_trips(body: str) -> None:
    signer = peter()
    text = body + "\n"
    assert open_note(sign_note(text, [signer]), [signer.verifier()]).text == text


# Keys.


def test_generated_keys_round_trip() -> None:
    signer = generate_signer("custody.example/log")
    again = parse_signer(format_signer(signer))
    assert again.public_key == signer.public_key
    assert again.name == signer.name
    assert parse_vkey(format_vkey(signer.verifier())) == signer.verifier()
    assert format_signer(signer) not in repr(signer)


def test_vkey_hex_id_may_be_upper_case_like_go() -> None:
    assert parse_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3")) == parse_vkey(PETER_VKEY)


@pytest.mark.parametrize(("text", "parse"), [(PETER_VKEY, parse_vkey), (PETER_SKEY, parse_signer)])
def test_every_mangled_key_is_rejected(text: str, parse: Callable[[str], object]) -> None:
    # As Go's TestNewVerifier / TestNewSigner: every proper substring and every byte + 1.
    mangled = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)}
    mangled.discard(text)
    mangled |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    for candidate in mangled:
        with pytest.raises(NoteError):
            parse(candidate)


@pytest.mark.parametrize(
    "vkey",
    [
        # Go's cases: wrong key length and unknown algorithm, each with a matching key id.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW+",
        "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_vkeys(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(vkey)


@pytest.mark.parametrize(
    "name",
    ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\x01b", "a\udc80b"],
)
def test_invalid_key_names(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(NoteError, match="invalid key name"):
        generate_signer(name)
    with pytest.raises(NoteError, match="invalid key name"):
        Verifier(name, bytes(32))


def test_valid_key_names() -> None:
    for name in ("example.com/log42", "PeterNeumann", "ed\u00e8 subito sera", "\u2014"):
        assert is_valid_name(name) == (" " not in name)


def test_public_key_must_be_32_bytes() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        Verifier("a", bytes(31))


@pytest.mark.parametrize("text", ["AA=", "AA==\n", "A", "AB==", " AA==", "AA==="])
def test_decode_base64_accepts_only_the_canonical_form(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        decode_base64(text)
