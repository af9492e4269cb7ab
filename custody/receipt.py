"""Custody receipts: C2SP tlog-proof (c2sp.org/tlog-proof@v1) text carrying the logged entry.

A receipt is exactly a tlog-proof, and the entry bytes travel in its `extra` line:

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry bytes>
    index <zero-based index>
    <base64 inclusion-proof hash, leaf's sibling first>...
    <empty line>
    <the signed checkpoint, verbatim>

tlog-proof "Format" defines that line for this purpose: "The second line MAY start with the
string `extra` followed by a space (U+0020) and base64-encoded opaque extra data. [...] Use
cases for the extra data include out-of-band context, or additional data necessary to
reconstruct the record hash". Given the evidence file, the entry is precisely the data needed
to reconstruct the record hash, so any tlog-proof tool can read our receipts unchanged, with
no side channel or wrapper. The spec also says "Applications MUST NOT implicitly trust the
extra data, as it is not authenticated": `verify_receipt` trusts the entry only after its
leaf hash is proven included under a checkpoint signed by the log, and only then reads the
file hash inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from custody.checkpoint import HASH_SIZE, MAX_SIZE, Checkpoint, open_checkpoint
from custody.errors import EventError, ReceiptError, SubjectMismatchError
from custody.events import MAX_ENTRY_BYTES, decode_entry
from custody.merkle import leaf_hash, verify_inclusion
from custody.note import Verifier, decode_base64, encode_base64

HEADER = "c2sp.org/tlog-proof@v1"  # tlog-proof "Format": the first line
MAX_PROOF_HASHES = 63  # a tree of fewer than 2**63 leaves has at most 63 levels
# tlog-proof "Format": "ASCII decimal with no leading zeroes (unless the index is `0`)".
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A logged entry, its index, its inclusion proof, and the signed checkpoint it is under."""

    entry: bytes
    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed checkpoint note, verbatim

    def __post_init__(self) -> None:
        if not 0 < len(self.entry) <= MAX_ENTRY_BYTES:
            raise ReceiptError(f"a receipt's entry is 1 to {MAX_ENTRY_BYTES} bytes")
        if not 0 <= self.index < MAX_SIZE:
            raise ReceiptError(f"index {self.index} is out of range")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise ReceiptError(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
        if any(len(node) != HASH_SIZE for node in self.proof):
            raise ReceiptError(f"every inclusion-proof hash is {HASH_SIZE} bytes")


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a receipt proves: this entry is at this index of the log under this checkpoint."""

    checkpoint: Checkpoint
    index: int
    entry: bytes
    event: dict[str, Any]


def format_receipt(receipt: Receipt) -> bytes:
    """The tlog-proof text; save it with the spec's `.tlog-proof` extension."""
    lines = [
        HEADER,
        f"extra {encode_base64(receipt.entry)}",
        f"index {receipt.index}",
        *(encode_base64(node) for node in receipt.proof),
    ]
    # tlog-proof "Format": after the proof lines and an empty line, the checkpoint verbatim.
    return "".join(f"{line}\n" for line in lines).encode("ascii") + b"\n" + receipt.checkpoint


def parse_receipt(data: bytes) -> Receipt:
    """Parse a tlog-proof that carries an entry in its `extra` line. Verifies nothing."""
    # The lines before the checkpoint are never empty, so the first blank line ends them.
    head, blank, checkpoint = data.partition(b"\n\n")
    if not blank or not checkpoint:
        raise ReceiptError("a tlog-proof needs an empty line and then the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise ReceiptError("the lines before the checkpoint must be ASCII") from exc
    if len(lines) < 3 or lines[0] != HEADER:
        raise ReceiptError(f"a tlog-proof starts with {HEADER!r}, extra and index lines")
    if not lines[1].startswith("extra "):
        raise ReceiptError("a custody receipt carries its entry in the tlog-proof extra line")
    entry = _decode(lines[1].removeprefix("extra "), what="extra data")
    index = _INDEX.fullmatch(lines[2])
    if index is None:
        raise ReceiptError(f"{lines[2][:40]!r} is not 'index N' without leading zeroes")
    proof = tuple(_decode(line, what="an inclusion-proof hash") for line in lines[3:])
    return Receipt(entry, int(index.group(1)), proof, checkpoint)


def verify_receipt(
    receipt: Receipt, verifier: Verifier, *, file_sha256: str | None
) -> VerifiedReceipt:
    """Check a receipt offline against the log's key, and optionally against a file's hash.

    Raises NoteError or CheckpointError (the checkpoint), InclusionProofError (the entry is
    not in the tree), ReceiptError (the entry is not a custody event) or SubjectMismatchError.
    """
    checkpoint = open_checkpoint(receipt.checkpoint, verifier)
    verify_inclusion(
        index=receipt.index,
        size=checkpoint.size,
        leaf_hash=leaf_hash(receipt.entry),
        proof=receipt.proof,
        root=checkpoint.root,
    )
    try:
        event = decode_entry(receipt.entry)
    except EventError as exc:
        raise ReceiptError(f"the logged entry is not a custody event: {exc}") from exc
    if file_sha256 is not None:
        _check_subject(event, file_sha256.lower())
    return VerifiedReceipt(checkpoint, receipt.index, receipt.entry, event)


def _check_subject(event: dict[str, Any], file_sha256: str) -> None:
    subject = event.get("subject")
    actual = subject.get("sha256") if isinstance(subject, dict) else None
    if actual != file_sha256:
        raise SubjectMismatchError(file_sha256, actual if isinstance(actual, str) else None)


def _decode(text: str, *, what: str) -> bytes:
    try:
        return decode_base64(text)
    except ValueError as exc:
        raise ReceiptError(f"{what} is not canonical base64") from exc
