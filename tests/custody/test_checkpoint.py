"""Checkpoints: the spec's example, strict parsing, signatures by the origin's key."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.checkpoint import (
    Checkpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from custody.errors import CheckpointError, NoteError, SignatureError, UnknownKeyError
from custody.note import Signer, generate_signer, parse_signer, parse_vkey, sign_note
from tests.custody.test_note import PETER_SKEY, PETER_VKEY

# The example in c2sp.org/tlog-checkpoint.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_CHECKPOINT = Checkpoint(
    "example.com/behind-the-sofa",
    20852163,
    base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
)
ROOT = bytes(range(32))


def log_signer() -> Signer:
    return generate_signer("custody.example/log")


def test_format_matches_the_spec_example() -> None:
    assert format_checkpoint(SPEC_CHECKPOINT) == SPEC_TEXT
    assert parse_checkpoint(SPEC_TEXT) == SPEC_CHECKPOINT


def test_extension_lines_round_trip() -> None:
    checkpoint = Checkpoint("o", 0, ROOT, ("ext one", "ext two"))
    text = format_checkpoint(checkpoint)
    assert text == f"o\n0\n{base64.b64encode(ROOT).decode()}\next one\next two\n"
    assert parse_checkpoint(text) == checkpoint


def test_empty_tree() -> None:
    # RFC 6962: the empty tree's root is SHA-256 of the empty string.
    empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert parse_checkpoint(f"o\n0\n{empty}\n").size == 0


@pytest.mark.parametrize(
    ("size", "root"),
    [
        pytest.param("020852163", None, id="leading-zero"),
        pytest.param("00", None, id="double-zero"),
        pytest.param("+5", None, id="plus-sign"),
        pytest.param("-1", None, id="negative"),
        pytest.param(" 5", None, id="space"),
        pytest.param("5 ", None, id="trailing-space"),
        pytest.param("", None, id="empty-size"),
        pytest.param("0x10", None, id="hex"),
        pytest.param("\u0661", None, id="arabic-indic-digit"),
        pytest.param(str(2**63), None, id="beyond-int64"),
        pytest.param("1", base64.b64encode(bytes(31)).decode(), id="31-byte-root"),
        pytest.param("1", base64.b64encode(bytes(33)).decode(), id="33-byte-root"),
        pytest.param("1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=", id="noncanonical"),
        pytest.param("1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I", id="unpadded"),
        pytest.param("1", "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=", id="url-safe"),
        pytest.param("1", "", id="empty-root"),
    ],
)
def test_malformed_size_or_root(size: str, root: str | None) -> None:
    root = root if root is not None else base64.b64encode(ROOT).decode()
    with pytest.raises(CheckpointError):
        parse_checkpoint(f"origin\n{size}\n{root}\n")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SPEC_TEXT[:-1], id="no-final-newline"),
        pytest.param("o\n5\n", id="two-lines"),
        pytest.param("", id="empty"),
        pytest.param("\n" + SPEC_TEXT.split("\n", 1)[1], id="empty-origin"),
        pytest.param(SPEC_TEXT + "\n", id="empty-extension"),
        pytest.param(SPEC_TEXT + "ext\n\n", id="trailing-empty-line"),
    ],
)
def test_malformed_text(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "fields",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**63, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("two\nlines",)),
    ],
)
def test_invalid_checkpoints_cannot_be_built(
    fields: tuple[str, int, bytes, tuple[str, ...]],
) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(*fields)


def test_sign_then_open() -> None:
    signer = log_signer()
    checkpoint = Checkpoint(signer.name, 7, ROOT)
    data = sign_checkpoint(checkpoint, signer)
    assert data.startswith((format_checkpoint(checkpoint) + "\n\u2014 ").encode())
    assert open_checkpoint(data, signer.verifier()) == checkpoint


def test_signed_by_go_key_matches_go_signature_lines() -> None:
    # Ed25519 is deterministic, so this pins the exact bytes Go's note.Sign produces too.
    signer = parse_signer(PETER_SKEY)
    data = sign_checkpoint(Checkpoint("PeterNeumann", 1, ROOT), signer)
    assert open_checkpoint(data, parse_vkey(PETER_VKEY)).size == 1


def test_wrong_key_is_rejected() -> None:
    signer = log_signer()
    data = sign_checkpoint(Checkpoint(signer.name, 7, ROOT), signer)
    with pytest.raises(UnknownKeyError):
        open_checkpoint(data, log_signer().verifier())


def test_origin_must_be_the_key_name() -> None:
    signer = log_signer()
    with pytest.raises(CheckpointError, match="origin"):
        sign_checkpoint(Checkpoint("other.example/log", 7, ROOT), signer)
    # A checkpoint for another log, signed by this log's key, does not open as this log's.
    foreign = sign_note(format_checkpoint(Checkpoint("other.example/log", 7, ROOT)), [signer])
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(foreign, signer.verifier())


def test_cosignatures_are_ignored() -> None:
    signer, witness = log_signer(), generate_signer("witness.example/w")
    checkpoint = Checkpoint(signer.name, 3, ROOT)
    data = sign_note(format_checkpoint(checkpoint), [signer, witness])
    assert open_checkpoint(data, signer.verifier()) == checkpoint


def test_a_note_that_is_not_a_checkpoint_is_rejected() -> None:
    signer = log_signer()
    with pytest.raises(CheckpointError):
        open_checkpoint(sign_note(f"{signer.name}\nhello\n", [signer]), signer.verifier())


def test_every_changed_bit_is_detected() -> None:
    signer = log_signer()
    data = sign_checkpoint(Checkpoint(signer.name, 20852163, ROOT, ("ext",)), signer)
    for position in range(len(data)):
        for bit in range(8):
            tampered = bytearray(data)
            tampered[position] ^= 1 << bit
            with pytest.raises((NoteError, CheckpointError)):
                open_checkpoint(bytes(tampered), signer.verifier())


def test_a_bad_signature_is_a_signature_error() -> None:
    signer = log_signer()
    data = sign_checkpoint(Checkpoint(signer.name, 1, ROOT), signer)
    tampered = data.replace(b"\n1\n", b"\n2\n", 1)
    with pytest.raises(SignatureError):
        open_checkpoint(tampered, signer.verifier())


_LINE = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1)


@given(
    origin=_LINE,
    size=st.integers(0, 2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3).map(tuple),
)
def test_format_then_parse_round_trips(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint
