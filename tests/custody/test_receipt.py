"""Receipts: the tlog-proof example, exact layout, offline verification, tampering."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.errors import (
    CheckpointError,
    CustodyError,
    InclusionProofError,
    NoteError,
    ReceiptError,
    SubjectMismatchError,
    UnknownKeyError,
)
from custody.events import CustodyEvent, Subject, encode_entry, ingested
from custody.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from custody.note import Signer, encode_base64, generate_signer
from custody.receipt import (
    HEADER,
    Receipt,
    VerifiedReceipt,
    format_receipt,
    parse_receipt,
    verify_receipt,
)

# The example in c2sp.org/tlog-proof (its signatures are elided, so it only parses).
SPEC_PROOF = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
""".encode()

TIME = datetime(2026, 11, 28, 21, 40, 0, 123456, tzinfo=UTC)


def file_hash(i: int) -> str:
    return hashlib.sha256(f"evidence {i}".encode()).hexdigest()


def entry(i: int) -> bytes:
    subject = Subject(file_hash(i), 100 + i, "image/jpeg")
    return encode_entry(
        ingested(event_id=f"ev_{i}", time=TIME, actor="usr_7", case="case-42", subject=subject)
    )


def build_log(entries: list[bytes], signer: Signer) -> tuple[list[Receipt], bytes]:
    """Receipts for every entry of a log holding `entries`, under one signed checkpoint."""
    leaves = [leaf_hash(e) for e in entries]

    def read(level: int, index: int) -> bytes:
        return root_from_leaf_hashes(leaves[index << level : (index + 1) << level])

    size = len(entries)
    checkpoint = sign_checkpoint(
        Checkpoint(signer.name, size, root_from_leaf_hashes(leaves)), signer
    )
    receipts = [
        Receipt(e, i, tuple(inclusion_proof(i, size, read)), checkpoint)
        for i, e in enumerate(entries)
    ]
    return receipts, checkpoint


@pytest.fixture(scope="module")
def signer() -> Signer:
    return generate_signer("custody.example/log")


@pytest.fixture(scope="module")
def receipts(signer: Signer) -> list[Receipt]:
    return build_log([entry(i) for i in range(13)], signer)[0]


# The format.


def test_the_spec_example_parses_and_formats_back_byte_for_byte() -> None:
    receipt = parse_receipt(SPEC_PROOF)
    assert receipt.entry == b"age-v1.2.1-darwin-arm64.tar.gz" + bytes.fromhex("9185c9dda5b8b585c9")
    assert receipt.index == 73894
    assert len(receipt.proof) == 5
    assert receipt.proof[0] == bytes.fromhex(
        "8122b25e861952067a8ddb9662b9033804629ce30626f7978e032405371d3e54"
    )
    assert receipt.checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert format_receipt(receipt) == SPEC_PROOF


def test_exact_layout(receipts: list[Receipt]) -> None:
    receipt = receipts[5]
    proof_lines = "".join(f"{encode_base64(h)}\n" for h in receipt.proof)
    expected = (
        f"{HEADER}\nextra {encode_base64(receipt.entry)}\nindex 5\n{proof_lines}\n"
    ).encode() + receipt.checkpoint
    assert format_receipt(receipt) == expected


def test_single_leaf_tree_has_an_empty_proof(signer: Signer) -> None:
    [receipt], checkpoint = build_log([entry(0)], signer)
    assert receipt.proof == ()
    assert format_receipt(receipt) == (
        f"{HEADER}\nextra {encode_base64(entry(0))}\nindex 0\n\n".encode() + checkpoint
    )
    assert parse_receipt(format_receipt(receipt)) == receipt
    assert verify_receipt(receipt, signer.verifier(), file_sha256=file_hash(0)).index == 0


@given(
    entry=st.binary(min_size=1, max_size=300),
    index=st.integers(0, 2**63 - 2),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=63).map(tuple),
    checkpoint=st.binary(min_size=1, max_size=300),
)
def test_format_then_parse_round_trips(
    entry: bytes, index: int, proof: tuple[bytes, ...], checkpoint: bytes
) -> None:
    receipt = Receipt(entry, index, proof, checkpoint)
    assert parse_receipt(format_receipt(receipt)) == receipt


def with_head(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode() + b"\n" + b"o\n1\nAAAA\n"


HASH = encode_base64(bytes(32))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(with_head(HEADER, "index 0"), id="no-extra-line"),
        pytest.param(with_head("c2sp.org/tlog-proof@v2", "extra AA==", "index 0"), id="v2"),
        pytest.param(with_head(HEADER, "extra AA==", "index 01"), id="leading-zero"),
        pytest.param(with_head(HEADER, "extra AA==", "index -1"), id="negative"),
        pytest.param(with_head(HEADER, "extra AA==", "index  1"), id="two-spaces"),
        pytest.param(with_head(HEADER, "extra AA==", "index"), id="no-index"),
        pytest.param(with_head(HEADER, "extra AA==", "Index 1"), id="capital"),
        pytest.param(with_head(HEADER, "index 0", "extra AA=="), id="swapped"),
        pytest.param(with_head(HEADER, "extra AA=", "index 0"), id="bad-extra-base64"),
        pytest.param(with_head(HEADER, "extra AB==", "index 0"), id="noncanonical-extra"),
        pytest.param(with_head(HEADER, "extra ", "index 0"), id="empty-extra"),
        pytest.param(with_head(HEADER, "extra AA==", "index 0", HASH[:-4]), id="short-hash"),
        pytest.param(with_head(HEADER, "extra AA==", "index 0", HASH + "x"), id="hash-junk"),
        pytest.param(with_head(HEADER, "extra AA==", "index 0", *[HASH] * 64), id="64-hashes"),
        pytest.param(with_head(HEADER, "extra AA==", "index 0", "\u00e9"), id="non-ascii"),
        pytest.param(with_head(HEADER, "extra AA==", "index 0")[:-11], id="no-checkpoint"),
        pytest.param(b"".join(with_head(HEADER, "extra AA==", "index 0").split(b"\n\n")), id="nl"),
        pytest.param(with_head("extra AA==", "index 0"), id="no-header"),
        pytest.param(b"\n" + with_head(HEADER, "extra AA==", "index 0"), id="leading-blank"),
        pytest.param(with_head(HEADER, "extra AA==", f"index {2**63}"), id="beyond-int64"),
    ],
)
def test_malformed_receipts_are_rejected(data: bytes) -> None:
    with pytest.raises(ReceiptError):
        parse_receipt(data)


@pytest.mark.parametrize(
    "fields",
    [
        (b"", 0, (), b"cp"),
        (b"e" * (64 * 1024 + 1), 0, (), b"cp"),
        (b"e", -1, (), b"cp"),
        (b"e", 0, (bytes(31),), b"cp"),
        (b"e", 0, (bytes(32),) * 64, b"cp"),
    ],
)
def test_invalid_receipts_cannot_be_built(
    fields: tuple[bytes, int, tuple[bytes, ...], bytes],
) -> None:
    with pytest.raises(ReceiptError):
        Receipt(*fields)


# Verification.


def test_every_receipt_of_every_small_log_verifies(signer: Signer) -> None:
    for size in range(1, 18):
        receipts, _ = build_log([entry(i) for i in range(size)], signer)
        for i, receipt in enumerate(receipts):
            verified = verify_receipt(
                parse_receipt(format_receipt(receipt)), signer.verifier(), file_sha256=file_hash(i)
            )
            assert verified == VerifiedReceipt(
                Checkpoint(signer.name, size, verified.checkpoint.root),
                i,
                entry(i),
                verified.event,
            )
            assert verified.event["subject"]["sha256"] == file_hash(i)
            assert verified.event["id"] == f"ev_{i}"


def test_file_hash_is_optional_and_case_insensitive(
    signer: Signer, receipts: list[Receipt]
) -> None:
    assert verify_receipt(receipts[3], signer.verifier(), file_sha256=None).index == 3
    upper = file_hash(3).upper()
    assert verify_receipt(receipts[3], signer.verifier(), file_sha256=upper).index == 3


def test_another_files_hash_is_a_mismatch(signer: Signer, receipts: list[Receipt]) -> None:
    with pytest.raises(SubjectMismatchError) as caught:
        verify_receipt(receipts[3], signer.verifier(), file_sha256=file_hash(4))
    assert (caught.value.expected, caught.value.actual) == (file_hash(4), file_hash(3))


def test_an_entry_without_a_subject_matches_no_file(signer: Signer) -> None:
    event = CustodyEvent("token-created", "ev_9", TIME, "usr_7")
    [receipt], _ = build_log([encode_entry(event)], signer)
    assert verify_receipt(receipt, signer.verifier(), file_sha256=None).event["id"] == "ev_9"
    with pytest.raises(SubjectMismatchError) as caught:
        verify_receipt(receipt, signer.verifier(), file_sha256=file_hash(0))
    assert caught.value.actual is None


@pytest.mark.parametrize("logged", [b"not json", b'{"b":1,"a":2}', b"[1]"])
def test_a_logged_entry_that_is_not_an_event_is_rejected(signer: Signer, logged: bytes) -> None:
    [receipt], _ = build_log([logged], signer)
    with pytest.raises(ReceiptError, match="not a custody event"):
        verify_receipt(receipt, signer.verifier(), file_sha256=None)


def test_wrong_key_is_rejected(receipts: list[Receipt]) -> None:
    with pytest.raises(UnknownKeyError):
        verify_receipt(
            receipts[0], generate_signer("custody.example/log").verifier(), file_sha256=None
        )


def test_a_checkpoint_for_another_origin_is_rejected(signer: Signer) -> None:
    other = generate_signer("other.example/log")
    receipts, _ = build_log([entry(0), entry(1)], other)
    with pytest.raises(UnknownKeyError):
        verify_receipt(receipts[0], signer.verifier(), file_sha256=None)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: Receipt(r.entry, r.index + 1, r.proof, r.checkpoint), id="index"),
        pytest.param(lambda r: Receipt(r.entry, 13, r.proof, r.checkpoint), id="index=size"),
        pytest.param(lambda r: Receipt(r.entry, r.index, r.proof[:-1], r.checkpoint), id="short"),
        pytest.param(
            lambda r: Receipt(r.entry, r.index, (*r.proof, bytes(32)), r.checkpoint), id="long"
        ),
        pytest.param(lambda r: Receipt(entry(6), r.index, r.proof, r.checkpoint), id="entry"),
        pytest.param(
            lambda r: Receipt(r.entry, r.index, r.proof[::-1], r.checkpoint), id="reordered"
        ),
    ],
)
def test_a_proof_that_does_not_lead_to_the_root_is_rejected(
    signer: Signer, receipts: list[Receipt], change: Callable[[Receipt], Receipt]
) -> None:
    with pytest.raises(InclusionProofError):
        verify_receipt(change(receipts[5]), signer.verifier(), file_sha256=None)


def test_a_receipt_under_an_older_checkpoint_still_verifies(signer: Signer) -> None:
    # Receipts stay valid as the log grows: each names its own checkpoint.
    old, _ = build_log([entry(i) for i in range(3)], signer)
    new, _ = build_log([entry(i) for i in range(9)], signer)
    assert old[2].checkpoint != new[2].checkpoint
    for receipt in (old[2], new[2]):
        assert verify_receipt(receipt, signer.verifier(), file_sha256=file_hash(2)).index == 2


def test_every_changed_bit_is_detected(signer: Signer, receipts: list[Receipt]) -> None:
    data = format_receipt(receipts[5])
    verifier = signer.verifier()
    for position in range(len(data)):
        for bit in range(8):
            tampered = bytearray(data)
            tampered[position] ^= 1 << bit
            with pytest.raises(CustodyError) as caught:
                verify_receipt(parse_receipt(bytes(tampered)), verifier, file_sha256=file_hash(5))
            assert isinstance(
                caught.value, ReceiptError | NoteError | CheckpointError | InclusionProofError
            )
