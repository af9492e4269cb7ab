"""Content proofs: given an original the verifying person holds, a sharing copy in the bag
shows that original's content unchanged (the stripper's content digest, recomputed here
over the original, equals the one the copy's `derived` entry committed to)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from custody.bundle.model import ExhibitRecord
from custody.bundle.verify_log import LogView
from custody.bundle.verify_report import ContentProof, Findings
from custody.errors import CustodyError
from custody.metadata.copies import stripper_for

CHUNK = 1024 * 1024
Original = BinaryIO | Path  # a stream must be seekable: it is read twice


def check_originals(
    originals: Sequence[Original],
    records: Sequence[ExhibitRecord],
    log: LogView,
    findings: Findings,
) -> tuple[ContentProof, ...]:
    """Each copy in the bag whose original is given, checked; the checks made."""
    proofs = []
    for number, original in enumerate(originals, start=1):
        name = _name(original, number)
        with _opened(original) as stream:
            sha256 = _sha256(stream)
            copies = [r for r in records if r.copy_of and r.copy_of.original_sha256 == sha256]
            if not copies:
                findings.warn(name, "content proof", f"sha256 {sha256} is no copy's original")
            for record in copies:
                stream.seek(0)
                proven = _check_copy(name, stream, record, sha256, log, findings)
                proofs.append(_proof(name, record, proven=proven))
    return tuple(proofs)


def _proof(name: str, record: ExhibitRecord, *, proven: bool) -> ContentProof:
    origin = record.copy_of
    kind, digest = (origin.content_kind, origin.content_sha256) if origin else ("", "")
    return ContentProof(name, record.number, record.path, kind, digest, proven)


def _check_copy(
    name: str,
    stream: BinaryIO,
    record: ExhibitRecord,
    sha256: str,
    log: LogView,
    findings: Findings,
) -> bool:
    expected = record.copy_of.content_sha256 if record.copy_of else ""
    ingested = log.entries.get(record.collected.entry, {})
    subject = ingested.get("subject")
    subject = subject if isinstance(subject, dict) else {}
    media_type = subject.get("media_type")
    proven = ingested.get("type") == "ingested" and subject.get("sha256") == sha256
    if not proven or not isinstance(media_type, str):
        found = "no proven ingested entry"
        findings.fail(record.path, "content proof", f"the media type of {name}", found)
        return False
    try:
        digest = stripper_for(media_type).content_digest(stream)
    except CustodyError as exc:
        found = f"no {media_type} content digest"
        findings.fail(record.path, "content proof", expected, found, f"{name}: {exc}")
        return False
    if digest != expected:
        detail = f"the content of {name}"
        findings.fail(record.path, "content proof", expected, digest, detail)
        return False
    return True


def _name(original: Original, number: int) -> str:
    if isinstance(original, Path):
        return str(original)
    name = getattr(original, "name", None)
    return name if isinstance(name, str) else f"original #{number}"


@contextmanager
def _opened(original: Original) -> Iterator[BinaryIO]:
    if isinstance(original, Path):
        with original.open("rb") as stream:
            yield stream
    else:
        original.seek(0)
        yield original


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
