"""What verifying an exhibit bundle found: integrity failures that each name the file, the
check, what was expected and what was found; warnings; and, apart from integrity, whose
keys the result rests on (trust)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Trust in a key or a TSA: given by the verifying person, or only what the bag itself carries.
SUPPLIED, BAG_ONLY, MISMATCH = "supplied", "bag only", "mismatch"
TRUSTED, BAG_CHAIN_ONLY = "trusted", "bag chain only"


@dataclass(frozen=True, slots=True)
class Failure:
    file: str  # the bag file (relative to the bag's root) the check is about
    check: str  # e.g. "fixity", "inclusion", "export"
    expected: str
    found: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "file": self.file,
            "check": self.check,
            "expected": self.expected,
            "found": self.found,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning: nothing is wrong with the bag, but something is not (yet) proven."""

    file: str
    check: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "check": self.check, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class TokenTrust:
    """One valid RFC 3161 token over an archived checkpoint, and whether its TSA is trusted."""

    file: str
    checkpoint: int
    tsa: str  # the TSA certificate's subject
    time: datetime
    trust: str  # TRUSTED or BAG_CHAIN_ONLY

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "checkpoint": self.checkpoint,
            "tsa": self.tsa,
            "time": self.time.isoformat(),
            "trust": self.trust,
        }


@dataclass(frozen=True, slots=True)
class Trust:
    log_key: str  # SUPPLIED, BAG_ONLY or MISMATCH
    log_vkey: str | None  # the key the log was checked with
    organisation_key: str
    organisation_fingerprint: str | None  # SHA-256 of the raw Ed25519 key checked with
    tokens: tuple[TokenTrust, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "log_key": self.log_key,
            "log_vkey": self.log_vkey,
            "organisation_key": self.organisation_key,
            "organisation_fingerprint": self.organisation_fingerprint,
            "timestamps": [t.to_json() for t in self.tokens],
        }


@dataclass(frozen=True, slots=True)
class ExhibitSummary:
    number: int
    path: str
    sha256: str
    kind: str
    collected_by: str | None  # the pseudonym in the `ingested` entry
    collected_at: str | None  # that entry's time: the server's clock, not a proof
    trusted_time: datetime | None  # earliest valid RFC 3161 time over its collection checkpoint
    trusted_time_trust: str | None  # TRUSTED or BAG_CHAIN_ONLY, for that token
    entries: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "exhibit": self.number,
            "path": self.path,
            "sha256": self.sha256,
            "kind": self.kind,
            "collected_by": self.collected_by,
            "collected_at": self.collected_at,
            "trusted_time": self.trusted_time.isoformat() if self.trusted_time else None,
            "trusted_time_trust": self.trusted_time_trust,
            "entries": list(self.entries),
        }


@dataclass(frozen=True, slots=True)
class ContentProof:
    """A supplied original, recomputed: does it show the copy's content unchanged?"""

    original: str  # the file given
    exhibit: int  # the sharing copy it was checked against
    path: str
    content_kind: str
    content_sha256: str  # what the copy's `derived` entry committed to
    proven: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "exhibit": self.exhibit,
            "path": self.path,
            "content_kind": self.content_kind,
            "content_sha256": self.content_sha256,
            "proven": self.proven,
        }


@dataclass(frozen=True, slots=True)
class BundleReport:
    root: str
    export_id: str | None
    case_id: str | None
    checkpoint: int | None  # the size every entry is proven against
    files: int  # files hashed
    octets: int  # bytes hashed
    failures: tuple[Failure, ...]
    warnings: tuple[Notice, ...]
    trust: Trust
    exhibits: tuple[ExhibitSummary, ...] = field(default=())
    content_proofs: tuple[ContentProof, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bag": self.root,
            "export_id": self.export_id,
            "case_id": self.case_id,
            "checkpoint": self.checkpoint,
            "files_checked": self.files,
            "octets_checked": self.octets,
            "failures": [f.to_json() for f in self.failures],
            "warnings": [w.to_json() for w in self.warnings],
            "trust": self.trust.to_json(),
            "exhibits": [e.to_json() for e in self.exhibits],
            "content_proofs": [p.to_json() for p in self.content_proofs],
        }


class Findings:
    """Failures and warnings as the checks find them; every check reports, none stops."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.warnings: list[Notice] = []

    def fail(
        self, file: str, check: str, expected: object, found: object, detail: str = ""
    ) -> None:
        self.failures.append(Failure(file, check, str(expected), str(found), detail))

    def warn(self, file: str, check: str, detail: str) -> None:
        self.warnings.append(Notice(file, check, detail))
