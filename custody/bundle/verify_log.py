"""The custody log inside a bag: the log's key, its signed checkpoints (C2SP tlog-checkpoint)
and each entry's receipt (C2SP tlog-proof, the entry in its extra line), the inclusion
proofs checked against the bundle's checkpoint (RFC 9162 §2.1.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.bundle.layout import LOG_VKEY, checkpoint_path
from custody.bundle.model import BundleInfo
from custody.bundle.verify_report import BAG_ONLY, MISMATCH, SUPPLIED, Findings
from custody.checkpoint import Checkpoint, open_checkpoint
from custody.errors import CustodyError, EventError, ProofError
from custody.events import decode_entry
from custody.merkle import leaf_hash, verify_inclusion
from custody.note import Verifier, format_vkey, parse_vkey
from custody.receipt import parse_receipt

_CHECKPOINT = re.compile(r"custody/checkpoints/(0|[1-9][0-9]*)/checkpoint")
_RECEIPT = re.compile(r"custody/entries/(0|[1-9][0-9]*)\.tlog-proof")
_RECEIPT_DIR = "custody/entries/"


@dataclass
class LogView:
    """The parts of the log the bag proves, once checked."""

    verifier: Verifier | None
    key_trust: str
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)  # size -> opened
    head: Checkpoint | None = None  # the bundle's checkpoint, size N
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> proven entry


def choose_log_key(
    tags: Mapping[str, bytes], supplied: Verifier | None, findings: Findings
) -> tuple[Verifier | None, str]:
    """The key to open checkpoints with: the one supplied, else the bag's own."""
    text = tags.get(LOG_VKEY, b"").decode("utf-8", "replace").strip()
    try:
        bags: Verifier | None = parse_vkey(text)
    except CustodyError as exc:
        bags = None
        findings.fail(LOG_VKEY, "log key", "a verifier key (name+id+key)", text or "none", str(exc))
    if supplied is None:
        return bags, BAG_ONLY
    if bags != supplied:
        findings.fail(
            LOG_VKEY, "log key", format_vkey(supplied), text or "none", "the supplied --vkey"
        )
        return supplied, MISMATCH
    return supplied, SUPPLIED


def open_log(tags: Mapping[str, bytes], info: BundleInfo, log: LogView, findings: Findings) -> None:
    """Open every archived checkpoint, then prove each receipt's entry under checkpoint N."""
    verifier = log.verifier
    if verifier is None:
        return
    if verifier.name != info.log_origin:
        findings.fail(LOG_VKEY, "log key", f"the key of {info.log_origin}", verifier.name)
    for path in sorted(tags):
        match = _CHECKPOINT.fullmatch(path)
        if match is not None:
            _open_archived(path, int(match.group(1)), tags[path], verifier, log, findings)
    head_path = checkpoint_path(info.checkpoint)
    log.head = log.checkpoints.get(info.checkpoint)
    if log.head is None:
        if head_path not in tags:
            findings.fail(head_path, "checkpoint", "the bundle's signed checkpoint", "missing")
        return
    for path in sorted(tags):
        if path.startswith(_RECEIPT_DIR):
            _check_receipt(path, tags[path], tags[head_path], log.head, log, findings)


def _open_archived(
    path: str, size: int, note: bytes, verifier: Verifier, log: LogView, findings: Findings
) -> None:
    try:
        checkpoint = open_checkpoint(note, verifier)
    except CustodyError as exc:
        findings.fail(path, "checkpoint", f"signed by {format_vkey(verifier)}", "no", str(exc))
        return
    if checkpoint.size != size:
        findings.fail(path, "checkpoint", f"tree size {size} (its directory)", checkpoint.size)
        return
    log.checkpoints[size] = checkpoint


def _check_receipt(
    path: str,
    data: bytes,
    head_note: bytes,
    head: Checkpoint,
    log: LogView,
    findings: Findings,
) -> None:
    match = _RECEIPT.fullmatch(path)
    if match is None:
        findings.fail(path, "receipt", "<index>.tlog-proof", path.removeprefix(_RECEIPT_DIR))
        return
    try:
        receipt = parse_receipt(data)
    except CustodyError as exc:
        findings.fail(path, "receipt", "a C2SP tlog-proof with an entry", "malformed", str(exc))
        return
    index = int(match.group(1))
    if receipt.index != index:
        findings.fail(path, "receipt", f"index {index} (its name)", f"index {receipt.index}")
        return
    if receipt.checkpoint != head_note:
        expected = f"the checkpoint {checkpoint_path(head.size)}"
        findings.fail(path, "receipt", expected, _first_line_diff(head_note, receipt.checkpoint))
        return
    try:
        verify_inclusion(
            index=index,
            size=head.size,
            leaf_hash=leaf_hash(receipt.entry),
            proof=receipt.proof,
            root=head.root,
        )
    except ProofError as exc:
        tree = f"entry {index} in the tree of size {head.size}"
        findings.fail(path, "inclusion", tree, "not proven", str(exc))
        return
    try:
        log.entries[index] = decode_entry(receipt.entry)
    except EventError as exc:
        findings.fail(path, "entry", "a custody event (RFC 8785 JSON)", "not one", str(exc))


def _first_line_diff(expected: bytes, found: bytes) -> str:
    for want, got in zip(expected.split(b"\n"), found.split(b"\n"), strict=False):
        if want != got:
            return f"another checkpoint (line {got.decode('utf-8', 'replace')[:60]!r})"
    return "another checkpoint"
