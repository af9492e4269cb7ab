"""The sealed objects a log names (originals, metadata sidecars, sharing copies), re-hashed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from custody.audit_report import AuditReport
from custody.errors import CustodyError, UnreadableObjectError
from custody.events import decode_entry

READ_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")  # as custody.events writes subjects

# What the log names and the store seals under its SHA-256: originals (`ingested`), their
# metadata sidecars (`ingested`, metadata.sha256) and sharing copies (`derived`).
ORIGINAL, SIDECAR, COPY = "original", "metadata sidecar", "sharing copy"
SEALED_KINDS = (ORIGINAL, SIDECAR, COPY)
# (kind, sha256 hex) -> stream, None if absent; raises NotVisibleError where the source may
# hold it but will not show it to this reader (the service, to a token outside its case)
OpenSealed = Callable[[str, str], BinaryIO | None]


class NotVisibleError(Exception):
    """The source would not show this object to this reader: not re-hashed, not a failure."""


def note_sealed(
    entry: bytes, index: int, report: AuditReport, sealed: dict[str, dict[str, int | None]]
) -> None:
    """Note the sealed objects an entry names: an ingest's original and its metadata
    sidecar, a sharing copy's bytes."""
    try:
        event = decode_entry(entry)
    except CustodyError as exc:
        report.fail(f"entry {index}", f"not a canonical custody event: {exc}")
        return
    kind = event.get("type")
    if kind not in ("ingested", "derived"):
        return
    subject = event.get("subject")
    sha256, size = (
        (subject.get("sha256"), subject.get("size")) if isinstance(subject, dict) else ("", "")
    )
    # A changed entry must be a failure, not a crash, nor a path to open outside the store.
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256) or type(size) is not int:
        report.fail(f"entry {index}", f"a {kind} event without its subject's sha256 and size")
        return
    sealed[ORIGINAL if kind == "ingested" else COPY].setdefault(sha256, size)
    metadata = event.get("metadata")
    if kind == "ingested" and metadata is not None:
        sidecar = metadata.get("sha256") if isinstance(metadata, dict) else None
        if not isinstance(sidecar, str) or not _SHA256.fullmatch(sidecar):
            report.fail(f"entry {index}", "an ingested event whose metadata sha256 is malformed")
            return
        sealed[SIDECAR].setdefault(sidecar, None)


@dataclass(frozen=True, slots=True)
class Rehashed:
    """What re-hashing one sealed object found: its SHA-256 and length, or that it is
    missing (`digest` None), unreadable (`unreadable`), or not shown to this reader
    (`visible` False)."""

    sha256: str
    digest: str | None = None
    length: int = 0
    visible: bool = True
    unreadable: UnreadableObjectError | None = None


# Applies a function to each item and yields the results in the items' order: `map`, or
# a bounded parallel map for a remote source (cli.read_ahead.ReadAhead.map_ahead).
EachInOrder = Callable[[Callable[[str], Rehashed], Iterable[str]], Iterable[Rehashed]]


def rehash(kind: str, sha256: str, open_sealed: OpenSealed) -> Rehashed:
    """Read one sealed object through and hash it."""
    digest, length = hashlib.sha256(), 0
    try:
        stream = open_sealed(kind, sha256)
        if stream is None:
            return Rehashed(sha256)
        with stream:
            while chunk := stream.read(READ_CHUNK):
                digest.update(chunk)
                length += len(chunk)
    except NotVisibleError:
        return Rehashed(sha256, visible=False)
    except UnreadableObjectError as exc:
        return Rehashed(sha256, unreadable=exc)
    return Rehashed(sha256, digest.hexdigest(), length)


def check_sealed(
    kind: str,
    objects: dict[str, int | None],
    open_sealed: OpenSealed,
    report: AuditReport,
    each: EachInOrder,
) -> None:
    """Re-hash every stored object of `kind`: it must hash to its name (and have its size)."""
    counted = {ORIGINAL: "originals", SIDECAR: "sidecars", COPY: "copies"}[kind]
    names = sorted(objects)
    for found in each(lambda sha256: rehash(kind, sha256, open_sealed), names):
        sha256, size = found.sha256, objects[found.sha256]
        setattr(report, counted, getattr(report, counted) + 1)
        where = f"{kind} {sha256}"
        if not found.visible:
            report.not_visible[kind] = report.not_visible.get(kind, 0) + 1
        elif found.unreadable is not None:
            report.unreadable(found.unreadable)
        elif found.digest is None:
            report.fail(where, "missing from the object store")
        elif found.digest != sha256 or (size is not None and found.length != size):
            want = f"sha256 {sha256}" + (f", {size} bytes" if size is not None else "")
            report.fail(
                where,
                "fixity: stored bytes differ",
                want,
                f"sha256 {found.digest}, {found.length} bytes",
            )
