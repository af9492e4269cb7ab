"""Sealed objects named by entries: noted from the entries, re-hashed from the store."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

from custody.audit_report import UNREADABLE, AuditReport
from custody.audit_sealed import (
    COPY,
    ORIGINAL,
    SEALED_KINDS,
    SIDECAR,
    NotVisibleError,
    check_sealed,
    note_sealed,
)
from custody.errors import UnreadableObjectError
from custody.events import Subject, encode_entry, ingested

DATA = b"a photo"
SHA = hashlib.sha256(DATA).hexdigest()
SIDECAR_SHA = "5" * 64


def noted(entry: bytes) -> tuple[AuditReport, dict[str, dict[str, int | None]]]:
    report, sealed = AuditReport(), {kind: {} for kind in SEALED_KINDS}
    note_sealed(entry, 3, report, sealed)  # type: ignore[arg-type]
    return report, sealed  # type: ignore[return-value]


def test_an_ingest_names_its_original_and_its_sidecar() -> None:
    event = ingested(
        event_id="e1",
        time=datetime(2026, 12, 5, tzinfo=UTC),
        actor="p1",
        case="c1",
        subject=Subject(SHA, len(DATA), "image/jpeg"),
        sidecar=SIDECAR_SHA,
    )
    report, sealed = noted(encode_entry(event))
    assert report.ok
    assert sealed == {ORIGINAL: {SHA: len(DATA)}, SIDECAR: {SIDECAR_SHA: None}, COPY: {}}


def test_an_entry_whose_subject_could_name_a_path_is_a_failure() -> None:
    entry = b'{"subject":{"sha256":"../../etc/passwd","size":1},"type":"ingested","v":1}'
    report, sealed = noted(entry)
    assert [f.where for f in report.failures] == ["entry 3"]
    assert sealed[ORIGINAL] == {}


def test_each_object_is_rehashed_and_every_outcome_named() -> None:
    good, changed = SHA, hashlib.sha256(b"other").hexdigest()
    missing, hidden, broken = "1" * 64, "2" * 64, "3" * 64

    def open_sealed(kind: str, sha256: str) -> io.BytesIO | None:
        if sha256 == missing:
            return None
        if sha256 == hidden:
            raise NotVisibleError(sha256)
        if sha256 == broken:
            raise UnreadableObjectError(f"originals/{sha256}", "the object", "EIO")
        return io.BytesIO(DATA)  # `changed` holds other bytes than its name says

    report = AuditReport()
    objects = {good: len(DATA), changed: None, missing: 1, hidden: 1, broken: 1}
    check_sealed(ORIGINAL, objects, open_sealed, report, map)  # type: ignore[arg-type]
    assert report.originals == 5
    assert report.not_visible == {ORIGINAL: 1}
    problems = {f.where: f.problem for f in report.failures}
    assert problems == {
        f"original {changed}": "fixity: stored bytes differ",
        f"original {missing}": "missing from the object store",
        f"originals/{broken}": UNREADABLE,
    }
