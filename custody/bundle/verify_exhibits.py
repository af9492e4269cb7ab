"""Each exhibit of a bag against the log: its record agrees with the manifests and with the
proven entries, every entry it names is about it, its `exported` entry binds it to this bag,
a copy's `derived` entry is its record's origin, and its collection is dated by a checkpoint
the bundle's checkpoint provably extends (RFC 9162 §2.1.4).

The record (custody/exhibits/NNN.json) is only a guide to the entries: every fact that
matters is taken from an entry whose inclusion is proven, and the record must agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custody.bundle.layout import (
    ALGORITHMS,
    PAYLOAD_DIR,
    checkpoint_path,
    exhibit_path,
    manifest_name,
    number_width,
    receipt_path,
)
from custody.bundle.model import ORIGINAL, SHARING_COPY, BundleInfo, ExhibitRecord
from custody.bundle.verify_bagit import BagFiles
from custody.bundle.verify_log import LogView
from custody.bundle.verify_report import ExhibitSummary, Findings, TokenTrust
from custody.bundle.verify_timestamps import collection_time
from custody.errors import BundleError, ConsistencyProofError
from custody.merkle import verify_consistency
from custody.purpose import purpose_opens

_RECORDS = "custody/exhibits/"


@dataclass(frozen=True, slots=True)
class Context:
    info: BundleInfo
    bag: BagFiles
    log: LogView
    tokens: tuple[TokenTrust, ...]
    findings: Findings


def load_records(ctx: Context) -> list[tuple[str, ExhibitRecord]]:
    """custody/exhibits/*.json: exactly the bundle's exhibits, numbered 1 to its count."""
    width = number_width(ctx.info.exhibits)
    expected = {exhibit_path(n, width): n for n in range(1, ctx.info.exhibits + 1)}
    present = {p for p in ctx.bag.sizes if p.startswith(_RECORDS)}
    for path in sorted(present - set(expected)):
        counted = f"one of exhibits 1 to {ctx.info.exhibits} ({width}-digit names)"
        ctx.findings.fail(path, "exhibit", counted, "a further file")
    records = []
    for path, number in expected.items():
        record = _load_record(path, ctx)
        if record is not None and record.number != number:
            ctx.findings.fail(path, "exhibit", f"exhibit {number}", f"exhibit {record.number}")
        elif record is not None:
            records.append((path, record))
    return records


def _load_record(path: str, ctx: Context) -> ExhibitRecord | None:
    data = ctx.bag.tags.get(path)
    if data is None:
        if path not in ctx.bag.sizes:
            ctx.findings.fail(path, "exhibit", "present (bundle.json counts it)", "missing")
        return None
    try:
        return ExhibitRecord.from_json(json.loads(data))
    except (ValueError, BundleError) as exc:
        ctx.findings.fail(path, "exhibit", "an exhibit record", "malformed", str(exc))
        return None


def check_unclaimed_payload(records: Sequence[ExhibitRecord], ctx: Context) -> None:
    """A payload file no exhibit record names is no exhibit: name it."""
    claimed = {r.path for r in records}
    for path in sorted(p for p in ctx.bag.sizes if p.startswith(PAYLOAD_DIR)):
        if path not in claimed:
            ctx.findings.fail(path, "exhibit", "the file of an exhibit record", "named by none")


def check_exhibit(path: str, record: ExhibitRecord, ctx: Context) -> ExhibitSummary:
    _check_payload(path, record, ctx)
    events = _proven_entries(path, record, ctx)
    for index, event in events.items():
        _check_mentions(index, event, record, ctx)
    _check_export(path, record, events, ctx)
    if record.kind == SHARING_COPY:
        _check_derivation(path, record, events, ctx)
    elif record.copy_of is not None:
        ctx.findings.fail(path, "exhibit", "no copy_of for an original", "copy_of")
    ingested = _check_collection(path, record, ctx)
    trusted_time, trust = collection_time(ctx.tokens, record.collected.checkpoint)
    if trusted_time is None:
        ctx.findings.warn(
            checkpoint_path(record.collected.checkpoint),
            "timestamp",
            f"no valid RFC 3161 token dates the collection of exhibit {record.number}",
        )
    return ExhibitSummary(
        number=record.number,
        path=record.path,
        sha256=record.sha256,
        kind=record.kind,
        collected_by=_text(ingested, "actor"),
        collected_at=_text(ingested, "time"),
        trusted_time=trusted_time,
        trusted_time_trust=trust,
        entries=record.entries,
    )


def _check_payload(path: str, record: ExhibitRecord, ctx: Context) -> None:
    """The record's hashes and size are the manifests' and the file's."""
    values = {"sha256": record.sha256, "sha512": record.sha512}
    for algorithm in ALGORITHMS:
        listed = ctx.bag.payload.get(algorithm, {}).get(record.path)
        if listed != values[algorithm]:
            expected = f"{algorithm} {values[algorithm]} (as {path} says)"
            found = listed or f"not listed in {manifest_name(algorithm)}"
            ctx.findings.fail(record.path, "exhibit", expected, found)
    size = ctx.bag.sizes.get(record.path)
    if size is None:
        ctx.findings.fail(record.path, "exhibit", f"present (exhibit {record.number})", "missing")
    elif size != record.size:
        ctx.findings.fail(record.path, "exhibit", f"{record.size} bytes (as {path} says)", size)


def _proven_entries(path: str, record: ExhibitRecord, ctx: Context) -> dict[int, dict[str, Any]]:
    if list(record.entries) != sorted(set(record.entries)):
        ctx.findings.fail(path, "entries", "log indices in increasing order", record.entries)
    events = {}
    for index in record.entries:
        event = ctx.log.entries.get(index)
        if event is None:
            expected = f"a receipt proving entry {index} of exhibit {record.number}"
            found = "not proven" if receipt_path(index) in ctx.bag.sizes else "missing"
            ctx.findings.fail(receipt_path(index), "entries", expected, found)
        else:
            events[index] = event
    return events


def _check_mentions(index: int, event: dict[str, Any], record: ExhibitRecord, ctx: Context) -> None:
    """Each entry is about the exhibit (a copy: or is its original's collection)."""
    file, kind = receipt_path(index), event.get("type")
    subject = _sha256_of(event.get("subject"))
    original = record.copy_of.original_sha256 if record.copy_of else None
    made_from = _dict(event.get("derived_from")).get("original")
    if subject == record.sha256:
        _check_subject(file, _dict(event.get("subject")), record, ctx)
    elif not (
        (kind == "derived" and record.kind == ORIGINAL and made_from == record.sha256)
        or (kind == "ingested" and original is not None and subject == original)
    ):
        expected = f"an entry about exhibit {record.number} (sha256 {record.sha256})"
        ctx.findings.fail(file, "entry", expected, f"{kind} about {subject}")
    if kind in ("ingested", "exported") and event.get("case") != ctx.info.case_id:
        ctx.findings.fail(file, "entry", f"case {ctx.info.case_id}", event.get("case"))


def _check_subject(file: str, subject: dict[str, Any], record: ExhibitRecord, ctx: Context) -> None:
    if subject.get("size") != record.size:
        ctx.findings.fail(file, "entry", f"size {record.size}", subject.get("size"))
    if subject.get("media_type") != record.media_type:
        ctx.findings.fail(file, "entry", record.media_type, subject.get("media_type"))
    sha512 = _dict(subject.get("digests")).get("sha512")
    if sha512 is not None and sha512 != record.sha512:
        ctx.findings.fail(file, "entry", f"sha512 {record.sha512}", sha512)


def _check_export(
    path: str, record: ExhibitRecord, events: dict[int, dict[str, Any]], ctx: Context
) -> None:
    """Its `exported` entry for this export binds it to this bag's payload and purpose."""
    mine = [
        (index, _dict(event.get("export")))
        for index, event in events.items()
        if event.get("type") == "exported"
        and _dict(event.get("export")).get("id") == ctx.info.export_id
    ]
    if len(mine) != 1:
        expected = f"one exported entry for export {ctx.info.export_id}"
        ctx.findings.fail(path, "export", expected, f"{len(mine)} among {list(events)}")
        return
    index, export = mine[0]
    manifest = ctx.bag.tags.get(manifest_name("sha256"), b"")
    wanted = {
        "exhibit": record.number,
        "exhibits": ctx.info.exhibits,
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
    }
    for name, value in wanted.items():
        if export.get(name) != value:
            ctx.findings.fail(receipt_path(index), "export", f"{name} {value}", export.get(name))
    if not purpose_opens(export, ctx.info.purpose, _key(ctx.info.purpose_key)):
        committed = export.get("purpose_hmac_sha256", export.get("purpose_sha256"))
        ctx.findings.fail(
            receipt_path(index),
            "export",
            f"a commitment to the purpose {ctx.info.purpose!r}"
            + (" under the bag's purpose_key" if "purpose_hmac_sha256" in export else ""),
            committed,
        )


def _key(hex_key: str | None) -> bytes | None:
    try:
        return bytes.fromhex(hex_key) if hex_key is not None else None
    except ValueError:  # a malformed key opens nothing: the check above then fails
        return None


def _check_derivation(
    path: str, record: ExhibitRecord, events: dict[int, dict[str, Any]], ctx: Context
) -> None:
    """A `derived` entry of the copy says what its record's copy_of says.

    The same stripper makes the same bytes every time, so a copy made twice in a case (or
    from two originals that differ only in metadata) has a derived entry for each making;
    the record names one of them, and that one must match it field for field.
    """
    made = [
        (index, _dict(event.get("derived_from")))
        for index, event in sorted(events.items())
        if event.get("type") == "derived" and _sha256_of(event.get("subject")) == record.sha256
    ]
    if record.copy_of is None or not made:
        found = "no copy_of" if record.copy_of is None else "no derived entry"
        ctx.findings.fail(path, "derivation", "copy_of and a derived entry", found)
        return
    origin = record.copy_of.to_json()
    origin["original"] = origin.pop("original_sha256")
    if any(all(derived.get(k) == v for k, v in origin.items()) for _, derived in made):
        return
    index, derived = made[0]
    for name, value in origin.items():
        if derived.get(name) != value:
            ctx.findings.fail(
                receipt_path(index), "derivation", f"{name} {value}", derived.get(name)
            )


def _check_collection(path: str, record: ExhibitRecord, ctx: Context) -> dict[str, Any] | None:
    """The `ingested` entry, and checkpoint S: entry < S <= N, S consistent with N."""
    collected, findings = record.collected, ctx.findings
    event = ctx.log.entries.get(collected.entry)
    original = record.copy_of.original_sha256 if record.copy_of else record.sha256
    if collected.entry not in record.entries or event is None:
        findings.fail(path, "collection", f"entry {collected.entry} among its proven entries", "no")
        event = None
    elif event.get("type") != "ingested" or _sha256_of(event.get("subject")) != original:
        expected = f"the ingested entry of {original}"
        found = f"{event.get('type')} about {_sha256_of(event.get('subject'))}"
        findings.fail(receipt_path(collected.entry), "collection", expected, found)
        event = None
    head = ctx.log.head
    if head is None:
        return event
    if not collected.entry < collected.checkpoint <= head.size:
        expected = f"entry {collected.entry} < checkpoint <= {head.size}"
        findings.fail(path, "collection", expected, f"checkpoint {collected.checkpoint}")
        return event
    _check_consistency(path, record, ctx)
    return event


def _check_consistency(path: str, record: ExhibitRecord, ctx: Context) -> None:
    size = record.collected.checkpoint
    old, head = ctx.log.checkpoints.get(size), ctx.log.head
    if old is None or head is None:
        if checkpoint_path(size) not in ctx.bag.sizes:  # else its failure is named already
            ctx.findings.fail(checkpoint_path(size), "collection", "present", "missing")
        return
    try:
        verify_consistency(
            old_size=old.size,
            new_size=head.size,
            old_root=old.root,
            new_root=head.root,
            proof=record.collected.consistency,
        )
    except ConsistencyProofError as exc:
        expected = f"checkpoint {head.size} extends checkpoint {size}"
        ctx.findings.fail(path, "consistency", expected, "not proven", str(exc))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sha256_of(subject: Any) -> str | None:
    value = _dict(subject).get("sha256")
    return value if isinstance(value, str) else None


def _text(event: dict[str, Any] | None, name: str) -> str | None:
    value = _dict(event).get(name)
    return value if isinstance(value, str) else None
